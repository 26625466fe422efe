package main

import (
	_ "github.com/dsnet/compress/bzip2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pierrec/lz4/v4"
)

func main() {}
