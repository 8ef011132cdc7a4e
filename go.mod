module github.com/crib-runtime/crib

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/opencontainers/runtime-spec v1.3.0
)
