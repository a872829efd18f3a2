// Package console is Strata's web console: one embedded bundle of HTML,
// CSS and JavaScript (no build step, nothing from a CDN) that every node
// serves on its HTTP address at /, and the JSON API under /console/api/ the
// page calls.
//
// The API reads cluster state from the node's metadata cache and does every
// change (create, delete or reconfigure a topic, reset a group's offsets,
// produce a test record) as a Kafka request to the node's own listener, so
// the console follows exactly the rules Kafka clients do: coordinators,
// error codes, and (once security exists) the same authorisation. Per-node
// figures (bytes in the hot tier, produce and fetch counts, lag history)
// live on the node that leads the partition or coordinates the group; the
// console asks that node at the HTTP address it registered in etcd.
//
// DescribeGroup is shared with `strata group describe`, so the command line
// and the console show the same lag.
package console
