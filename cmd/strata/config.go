package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// applyLayers fills every flag the command line did not set from, in order,
// its STRATA_* environment variable and the YAML config file (keys are the
// flag names). The command line wins over the environment, which wins over
// the file, which wins over the defaults.
func applyLayers(fs *flag.FlagSet, configPath string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var file map[string]any
	if configPath != "" {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return fmt.Errorf("config file %s: %w", configPath, err)
		}
		file = kafkaKeys(file)
		var unknown []string
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config file %s: unknown keys: %s", configPath, strings.Join(unknown, ", "))
		}
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s, err := yamlScalar(v)
			if err == nil {
				err = fs.Set(f.Name, s)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("config file key %s: %w", f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// kafkaAliases are Kafka's names for settings whose flag is named
// otherwise.
var kafkaAliases = map[string]string{
	"inter.broker.listener.name": "inter-node-listener",
}

// kafkaKeys lets the YAML file use Kafka's dotted names (listeners,
// advertised.listeners, listener.security.protocol.map,
// sasl.enabled.mechanisms, ...) as well as the flag names: a dotted key
// stands for the flag with dashes.
func kafkaKeys(file map[string]any) map[string]any {
	out := make(map[string]any, len(file))
	for k, v := range file {
		if a, ok := kafkaAliases[k]; ok {
			k = a
		}
		out[strings.ReplaceAll(k, ".", "-")] = v
	}
	return out
}

// envName is the environment twin of a flag: --flush-bytes → STRATA_FLUSH_BYTES.
func envName(flagName string) string {
	return "STRATA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func yamlScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int, int64, float64, bool:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := yamlScalar(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("want a scalar or a list, got %T", v)
	}
}

// byteSize is a flag value accepting 1048576, 1MiB, 64MB, 512KiB, 2GiB.
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 8MiB or 1048576)", s)
	}
	return n * mult, nil
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
