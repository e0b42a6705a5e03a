// Package dashboards holds Vigía's Grafana dashboards (classic JSON, one
// file each), their provisioning files and the Prometheus alert rules on
// the NOC itself. The Go code is only the embedding; the tests check that
// every panel asks for metrics the binary registers and that a real
// Prometheus scraping a running `vigia serve` answers every panel.
package dashboards

import "embed"

// Files are the dashboards' JSON files.
//
//go:embed *.json
var Files embed.FS
