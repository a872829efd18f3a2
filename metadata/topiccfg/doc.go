// Package topiccfg is the one table of Kafka topic configs Strata knows:
// their names, Kafka's defaults (or Strata's, where it differs and says
// why), types, documentation and validation, and the typed view the tier
// acts on. CreateTopics, DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs (ingest) and the roller, retention and compactor
// (tier) all read it, so every path accepts and reports the same names and
// values.
//
// Every standard Kafka topic config is accepted, so admin UIs, Terraform
// providers and operators that set names like min.insync.replicas work
// unchanged; only invalid values are refused. Configs that have no effect
// in Strata say so in their documentation (Effect false).
package topiccfg
