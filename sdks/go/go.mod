module github.com/konorkestra/konorkestra/sdks/go

go 1.22
