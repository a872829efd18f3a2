// Command strata-bench runs Strata's benchmark scenarios (package bench) on
// nodes started in this process and prints one Markdown table, or JSON with
// -json:
//
//	go run ./bench/cmd/strata-bench [-store fs|minio] [-records N] [-size 1024]
//	    [-partitions 6] [-producers 4] [-paced-rate 5000] [-paced-records N]
//	    [-timeout 5m] [-flush-interval 25ms]
//	    [-flush-bytes 8388608] [-dir DIR] [-json] [-json-file FILE] [-v]
//
// It exits 1 when a consume pass did not see every acknowledged record
// exactly once, and 2 on any other failure. It must never report a number
// from a run that failed that check.
package main
