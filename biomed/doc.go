// Package biomed is the biomedical engineering service: maintenance
// programmes by the manufacturer's book and the work orders they open,
// IEC 62353 electrical safety test records (a failed test takes the device
// out of service and opens a Sev 2 ticket), calibration of measuring
// devices, and safety alerts and recalls matched to the installed base.
//
// It sits after dispatch in the flow: it reads devices from assets (and
// sets their operational status through assets), opens tickets and work
// orders through maintenance, and reads visits from dispatch. It owns the
// biomed_* tables and nobody else writes them.
package biomed
