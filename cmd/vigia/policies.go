package main

import "github.com/vigia-noc/vigia/maintenance/sla"

// knownPolicy tells the importer whether a contract's SLA policy exists:
// the presets shipped from the support contracts.
func knownPolicy(name string) bool {
	_, err := sla.Presets().Lookup(name)
	return err == nil
}
