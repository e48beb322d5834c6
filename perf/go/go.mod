module regio/perf/go

go 1.19
