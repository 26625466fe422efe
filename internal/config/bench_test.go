package config

import "testing"

func BenchmarkParseArchivePush(b *testing.B) {
	env := []string{"PGBACKREST_REPO1_PATH=/repo", "PGBACKREST_PG1_PATH=/pg", "PATH=/usr/bin"}
	for i := 0; i < b.N; i++ {
		if _, err := Parse([]string{"--no-config", "--stanza=main", "archive-push", "/pg/pg_wal/000000010000000000000001"}, env); err != nil {
			b.Fatal(err)
		}
	}
}
