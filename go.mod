module github.com/broadsheet-news/broadsheet

go 1.26.0

require github.com/jordan-wright/email v4.0.1-0.20210109023952-943e75fe5223+incompatible

require (
	go.etcd.io/bbolt v1.5.0 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
