// Command strata-chaos runs Strata's fault-schedule checker (package
// bench/chaos): a three-node Strata cluster on a real etcd and MinIO, all
// separate processes on 127.0.0.1, under franz-go load, through a seeded
// random schedule of faults, then checks that no acknowledged record was
// lost, duplicated, reordered or overwritten, that no reader skipped a
// record, that committed offsets never went backwards and that every
// partition served again soon after each fault healed.
//
//	go run ./bench/cmd/strata-chaos --seed 1 --duration 60s
//	go run ./bench/cmd/strata-chaos --seed 7 --duration 10m --report chaos.md
//
// It needs etcd (Debian's etcd-server: /usr/bin/etcd) and MinIO
// (bash .ci/install-minio). It prints each fault as it is applied and
// healed, then a Markdown report with the seed to replay it.
//
// Exit status: 0 no violation; 1 a violation (the evidence and the kept
// run folder with every process's log are printed); 2 a harness error
// (the checker could not run: not a finding about Strata).
package main
