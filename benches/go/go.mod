module spangc-bench-go

go 1.19
