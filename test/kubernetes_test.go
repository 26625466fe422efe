package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// k8sObjects is what the manifests of docs/kubernetes hold, by kind.
type k8sObjects struct {
	serviceAccounts []corev1.ServiceAccount
	configMaps      []corev1.ConfigMap
	services        []corev1.Service
	statefulSets    []appsv1.StatefulSet
	jobs            []batchv1.Job
	cronJobs        []batchv1.CronJob
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
}

// decodeManifests decodes every document of a manifest file strictly
// (unknown fields fail) into its Kubernetes API type.
func decodeManifests(t *testing.T, path string) *k8sObjects {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o := &k8sObjects{}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		strict := func(v any) {
			if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
				t.Fatalf("%s document %d (%s): %v", path, i, tm.Kind, err)
			}
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ServiceAccount":
			var v corev1.ServiceAccount
			strict(&v)
			o.serviceAccounts = append(o.serviceAccounts, v)
		case "v1 ConfigMap":
			var v corev1.ConfigMap
			strict(&v)
			o.configMaps = append(o.configMaps, v)
		case "v1 Service":
			var v corev1.Service
			strict(&v)
			o.services = append(o.services, v)
		case "apps/v1 StatefulSet":
			var v appsv1.StatefulSet
			strict(&v)
			o.statefulSets = append(o.statefulSets, v)
		case "batch/v1 Job":
			var v batchv1.Job
			strict(&v)
			o.jobs = append(o.jobs, v)
		case "batch/v1 CronJob":
			var v batchv1.CronJob
			strict(&v)
			o.cronJobs = append(o.cronJobs, v)
		case "rbac.authorization.k8s.io/v1 Role":
			var v rbacv1.Role
			strict(&v)
			o.roles = append(o.roles, v)
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			var v rbacv1.RoleBinding
			strict(&v)
			o.roleBindings = append(o.roleBindings, v)
		default:
			t.Fatalf("%s document %d: unexpected kind %q %q", path, i, tm.APIVersion, tm.Kind)
		}
	}
	return o
}

func k8sDir() string { return filepath.Join("..", "docs", "kubernetes") }

// TestKubernetesStrictDecodingRejectsTypos proves the decoder used on the
// manifests fails on a field the API does not have.
func TestKubernetesStrictDecodingRejectsTypos(t *testing.T) {
	bad := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: a\n          image: b\n          comand: [x]\n"
	var j batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(bad), &j); err == nil || !strings.Contains(err.Error(), "comand") {
		t.Fatalf("strict decoding accepted an unknown field: %v", err)
	}
}

// TestKubernetesDocIncludesManifests requires docs/kubernetes.md to hold
// every manifest file verbatim, each after its include marker.
func TestKubernetesDocIncludesManifests(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir(), "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("only %d manifest files", len(files))
	}
	marker := regexp.MustCompile(`<!-- include: kubernetes/(\S+) -->\n`)
	included := map[string]bool{}
	for _, m := range marker.FindAllStringSubmatchIndex(string(doc), -1) {
		name := string(doc[m[2]:m[3]])
		body, err := os.ReadFile(filepath.Join(k8sDir(), name))
		if err != nil {
			t.Fatalf("doc includes %s: %v", name, err)
		}
		want := "```yaml\n" + string(body) + "```\n"
		if !strings.HasPrefix(string(doc[m[1]:]), want) {
			t.Fatalf("docs/kubernetes.md differs from docs/kubernetes/%s", name)
		}
		included[name] = true
	}
	for _, f := range files {
		if !included[filepath.Base(f)] {
			t.Fatalf("docs/kubernetes.md does not include %s", filepath.Base(f))
		}
	}
}

// confSubst rewrites a pgbackrest.conf from a ConfigMap for the test:
// every key in set must be present and gets the new value; add lines go
// to the end of their section.
func confSubst(t *testing.T, conf string, set map[string]string, add map[string][]string) string {
	t.Helper()
	var out []string
	section := ""
	seen := map[string]bool{}
	flush := func() {
		out = append(out, add[section]...)
	}
	for _, l := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		if strings.HasPrefix(l, "[") {
			if section != "" {
				if len(out) > 0 && out[len(out)-1] == "" {
					out = out[:len(out)-1]
					flush()
					out = append(out, "")
				} else {
					flush()
				}
			}
			section = strings.Trim(l, "[]")
			out = append(out, l)
			continue
		}
		if k, _, ok := strings.Cut(l, "="); ok {
			if v, ok := set[k]; ok {
				l = k + "=" + v
				seen[k] = true
			}
		}
		out = append(out, l)
	}
	flush()
	for k := range set {
		if !seen[k] {
			t.Fatalf("the ConfigMap's pgbackrest.conf has no %s", k)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// container finds a container (or init container) by name.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// mountPath returns where a container mounts a volume.
func mountPath(t *testing.T, c corev1.Container, volume string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	t.Fatalf("container %s does not mount %s", c.Name, volume)
	return ""
}

// execArgs returns the pgbr command a kubectl-exec Job runs in the
// postgres container (after "--").
func execArgs(t *testing.T, spec corev1.PodSpec) []string {
	t.Helper()
	cmd := append(append([]string{}, spec.Containers[0].Command...), spec.Containers[0].Args...)
	for i, a := range cmd {
		if a == "--" {
			if cmd[0] != "kubectl" || !strings.Contains(strings.Join(cmd[:i], " "), "exec postgres-0 -c postgres") {
				t.Fatalf("not a kubectl exec into postgres-0: %q", cmd)
			}
			return cmd[i+1:]
		}
	}
	t.Fatalf("no -- in %q", cmd)
	return nil
}

// TestKubernetesManifests decodes the manifests of docs/kubernetes and runs
// what they configure against MinIO: PostgreSQL archives through the
// StatefulSet's archive_command with the IRSA ConfigMap's pgbackrest.conf
// (web identity token rewritten every 3 s with a 12 s lifetime, so
// credentials expire during the commands), the stanza-create Job, the full
// and diff CronJobs and the restore Job run their pgbr commands, the
// restored cluster recovers through the restore_command pgbr wrote, and
// with the Pod Identity ConfigMap (fake agent) check and a diff backup
// work. Only endpoints, bucket, role, token files and paths are replaced.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	irsa := decodeManifests(t, filepath.Join(k8sDir(), "irsa.yaml"))
	podID := decodeManifests(t, filepath.Join(k8sDir(), "pod-identity.yaml"))
	pg := decodeManifests(t, filepath.Join(k8sDir(), "postgres.yaml"))
	bk := decodeManifests(t, filepath.Join(k8sDir(), "backup-cronjob.yaml"))
	rs := decodeManifests(t, filepath.Join(k8sDir(), "restore-job.yaml"))
	if len(irsa.configMaps) != 1 || len(podID.configMaps) != 1 || len(pg.statefulSets) != 1 || len(bk.cronJobs) != 2 ||
		len(bk.jobs) != 1 || len(rs.jobs) != 1 || len(irsa.serviceAccounts) != 1 || len(podID.serviceAccounts) != 1 {
		t.Fatal("unexpected set of manifests")
	}

	// The manifests agree with each other.
	sts := pg.statefulSets[0]
	spec := sts.Spec.Template.Spec
	sa := irsa.serviceAccounts[0]
	if spec.ServiceAccountName != sa.Name || rs.jobs[0].Spec.Template.Spec.ServiceAccountName != sa.Name ||
		podID.serviceAccounts[0].Name != sa.Name {
		t.Fatal("the postgres pod, the restore Job and both service accounts do not agree on the service account")
	}
	if sa.Annotations["eks.amazonaws.com/role-arn"] == "" || !strings.Contains(irsa.configMaps[0].Data["pgbackrest.conf"], "repo1-s3-role-arn="+sa.Annotations["eks.amazonaws.com/role-arn"]+"\n") {
		t.Fatal("the IRSA role of the service account and of pgbackrest.conf differ")
	}
	pgc := container(t, spec, "postgres")
	var archiveCommand string
	for i, a := range pgc.Args {
		if i > 0 && pgc.Args[i-1] == "-c" && strings.HasPrefix(a, "archive_command=") {
			archiveCommand = strings.TrimPrefix(a, "archive_command=")
		}
	}
	confPath := mountPath(t, pgc, "pgbr-config") + "/pgbackrest.conf"
	binPath := mountPath(t, pgc, "pgbr-bin") + "/pgbr"
	if mountPath(t, container(t, spec, "pgbr"), "pgbr-bin")+"/pgbr" != binPath {
		t.Fatal("the sidecar installs pgbr elsewhere")
	}
	want := binPath + " --config=" + confPath + " --stanza=main archive-push %p"
	if archiveCommand != want {
		t.Fatalf("archive_command %q, want %q", archiveCommand, want)
	}
	for _, v := range spec.Volumes {
		if v.Name == "pgbr-config" && (v.ConfigMap == nil || v.ConfigMap.Name != irsa.configMaps[0].Name) {
			t.Fatal("the pgbr-config volume is not the ConfigMap")
		}
	}
	if claim := rs.jobs[0].Spec.Template.Spec.Volumes; !strings.Contains(fmt.Sprint(claim), sts.Spec.VolumeClaimTemplates[0].Name+"-"+sts.Name+"-0") {
		t.Fatal("the restore Job does not mount postgres-0's data volume")
	}

	// Run them.
	m := testenv.StartMinIO(t)
	dir := testenv.Dir(t, "k8s")
	token := filepath.Join(dir, "token")
	stop := m.OIDC.RotateEvery(token, 3*time.Second, 12*time.Second)
	defer stop()
	podToken := filepath.Join(dir, "pod-token")
	if err := m.OIDC.WriteTokenFile(podToken, time.Hour); err != nil {
		t.Fatal(err)
	}
	agent := testenv.StartPodIdentity(t, m, 20*time.Second, podToken)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	common := map[string]string{
		"repo1-s3-endpoint": "127.0.0.1", "repo1-s3-bucket": m.Bucket, "repo1-s3-region": m.Region,
		"spool-path": filepath.Join(dir, "spool"), "log-path": filepath.Join(dir, "log"), "lock-path": filepath.Join(dir, "lock"),
		"pg1-path": e.Cluster.Data, "pg1-socket-path": e.Cluster.Socket,
	}
	add := func(extra ...string) map[string][]string {
		return map[string][]string{
			"global": append([]string{fmt.Sprintf("repo1-storage-port=%d", m.Port), "repo1-storage-ca-file=" + m.CAFile, "repo1-s3-uri-style=path"}, extra...),
			"main":   {fmt.Sprintf("pg1-port=%d", e.Cluster.Port)},
		}
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	irsaConf := filepath.Join(dir, "irsa.conf")
	os.WriteFile(irsaConf, []byte(confSubst(t, irsa.configMaps[0].Data["pgbackrest.conf"],
		with(map[string]string{"repo1-s3-role-arn": m.RoleARN, "repo1-s3-web-id-token-file": token}),
		add(fmt.Sprintf("repo1-s3-sts-host=127.0.0.1:%d", m.Port)))), 0o644)
	podConf := filepath.Join(dir, "pod-identity.conf")
	os.WriteFile(podConf, []byte(confSubst(t, podID.configMaps[0].Data["pgbackrest.conf"],
		with(map[string]string{"repo1-s3-pod-id-uri": agent.URL + "/v1/credentials", "repo1-s3-pod-id-token-file": podToken}),
		add())), 0o644)
	testenv.Chown(t, dir)

	// localize turns a command of the manifests into this machine's.
	localize := func(args []string, conf string) []string {
		out := append([]string{}, args...)
		if out[0] != binPath {
			t.Fatalf("command %q does not run %s", args, binPath)
		}
		for i, a := range out {
			if a == "--config="+confPath {
				out[i] = "--config=" + conf
			}
		}
		return out[1:]
	}
	run := func(what string, args []string) string {
		t.Helper()
		out, code := testenv.AsPostgres(dir, nil, e.Pgbr, args...)
		if code != 0 {
			t.Fatalf("%s: pgbr %q: exit %d\n%s", what, args, code, out)
		}
		// The only warning allowed: --delta on an empty directory (the
		// test restores into a new one, the Job into the old data).
		rest := regexp.MustCompile(`WARN: --delta or --force specified but unable to find 'PG_VERSION'[^\n]*`).ReplaceAllString(out, "")
		if strings.Contains(rest, "WARN:") {
			t.Fatalf("%s: warnings:\n%s", what, out)
		}
		t.Logf("%s: pgbr %s ok", what, strings.Join(args[1:], " "))
		return out
	}

	// PostgreSQL archives with the StatefulSet's archive_command.
	localCmd := strings.Replace(strings.Replace(archiveCommand, binPath, e.Pgbr, 1), "--config="+confPath, "--config="+irsaConf, 1)
	e.Cluster.Exec("postgres", "alter system set archive_command = '"+localCmd+"'")
	e.Cluster.Exec("postgres", "select pg_reload_conf()")

	run("stanza-create Job", localize(execArgs(t, bk.jobs[0].Spec.Template.Spec), irsaConf))
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 20000) g")
	var full, diff []string
	for _, cj := range bk.cronJobs {
		args := execArgs(t, cj.Spec.JobTemplate.Spec.Template.Spec)
		switch args[len(args)-1] {
		case "--type=full":
			full = args
		case "--type=diff":
			diff = args
		}
	}
	if full == nil || diff == nil {
		t.Fatal("no full and diff CronJobs")
	}
	run("full CronJob", localize(full, irsaConf))
	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20001, 30000) g")
	run("diff CronJob", localize(diff, irsaConf))
	// check: WAL reaches the repository through archive_command (async).
	out := run("check (IRSA)", localize([]string{binPath, "--config=" + confPath, "--stanza=main", "check"}, irsaConf))
	if !strings.Contains(out, "key type web-id") {
		t.Fatalf("check did not report web identity credentials:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "spool", "archive", "main", "out")); err != nil {
		t.Fatalf("archive_command did not run asynchronously (no spool): %v", err)
	}

	// Pod Identity ConfigMap.
	out = run("check (Pod Identity)", localize([]string{binPath, "--config=" + confPath, "--stanza=main", "check"}, podConf))
	if !strings.Contains(out, "key type pod-id") {
		t.Fatalf("check did not report pod identity credentials:\n%s", out)
	}
	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(30001, 35000) g")
	run("diff CronJob (Pod Identity)", localize(diff, podConf))
	if agent.Fetches.Load() == 0 {
		t.Fatal("the pod identity agent was not asked")
	}

	// Restore Job into a new data directory; PostgreSQL recovers through
	// the restore_command pgbr wrote.
	wantDigest := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	run("check before restore", localize([]string{binPath, "--config=" + confPath, "--stanza=main", "check"}, irsaConf))
	rdir := testenv.Dir(t, "k8s-restore")
	data := filepath.Join(rdir, "pg")
	// --pg1-path: a new directory; --archive-mode=off: the restored copy
	// runs beside the original on this host and must not archive into its
	// stanza.
	restoreCmd := append(localize(rs.jobs[0].Spec.Template.Spec.Containers[0].Command, irsaConf), "--pg1-path="+data, "--archive-mode=off")
	run("restore Job", restoreCmd)
	auto, _ := os.ReadFile(filepath.Join(data, "postgresql.auto.conf"))
	if !strings.Contains(string(auto), "restore_command = '"+e.Pgbr+" --config="+irsaConf) {
		t.Fatalf("restore_command does not use the Job's binary and config:\n%s", auto)
	}
	r := testenv.StartRestored(t, rdir, data)
	if got := r.QueryOne("postgres", digestSQL+"t"); got != wantDigest {
		t.Fatal("restored data differs")
	}
}
