package main

// knownPolicy tells the importer whether a contract's SLA policy exists.
// Until the SLA engine ships its presets, any name is accepted.
var knownPolicy func(name string) bool
