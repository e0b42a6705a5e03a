package assets

import (
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Coverage statuses: work on a covered device is part of the contract;
// anything else is billable (seed 000 §5). Monitoring runs either way.
const (
	Covered  = "covered"
	Billable = "billable"
)

// Coverage reasons.
const (
	ReasonContract           = "contract"             // an active, activated, paid-up contract names the device
	ReasonWarrantySupport    = "warranty_support"     // free support window after delivery (seed 001)
	ReasonNoContract         = "no_contract"          // the customer has no contract at all
	ReasonDeviceNotListed    = "device_not_listed"    // contracts exist, none names this device
	ReasonContractNotStarted = "contract_not_started" // the contract's validity has not begun
	ReasonContractExpired    = "contract_expired"     // the contract's validity has ended
	ReasonNotActivated       = "not_activated"        // close act unsigned or first invoice not issued (seed 000 §1)
	ReasonNotPaidUp          = "not_paid_up"          // the customer is not up to date with payments
	ReasonWarrantyOnly       = "warranty_only"        // only a manufacturing-defects warranty applies (seed 004)
)

// reasonText explains each reason to people, in Spanish and English.
var reasonText = map[string][2]string{
	ReasonContract:           {"cubierto por contrato vigente", "covered by an active contract"},
	ReasonWarrantySupport:    {"en periodo de soporte gratuito tras la entrega", "in the free support period after delivery"},
	ReasonNoContract:         {"el cliente no tiene contrato de soporte", "the customer has no support contract"},
	ReasonDeviceNotListed:    {"el equipo no está incluido en ningún contrato", "the device is not listed in any contract"},
	ReasonContractNotStarted: {"el contrato aún no ha iniciado", "the contract has not started yet"},
	ReasonContractExpired:    {"el contrato está vencido", "the contract has expired"},
	ReasonNotActivated:       {"soporte no activado: falta el acta de cierre firmada o la primera factura", "support not activated: the signed close act or the first invoice is missing"},
	ReasonNotPaidUp:          {"el cliente no tiene la cartera al día", "the customer is not paid up"},
	ReasonWarrantyOnly:       {"solo garantía: cubre únicamente defectos de fabricación", "warranty only: covers manufacturing defects only"},
}

// Coverage says whether work on a device at an instant is covered or billable, and why.
type Coverage struct {
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	TextES     string `json:"text_es"`
	TextEN     string `json:"text_en"`
	ContractID string `json:"contract_id,omitempty"`
	SLAPolicy  string `json:"sla_policy,omitempty"`
}

func coverage(status, reason string, k *Contract) Coverage {
	c := Coverage{Status: status, Reason: reason, TextES: reasonText[reason][0], TextEN: reasonText[reason][1]}
	if k != nil {
		c.ContractID, c.SLAPolicy = k.ID, k.SLAPolicy
	}
	return c
}

// Covered reports whether the status is covered.
func (c Coverage) Covered() bool { return c.Status == Covered }

// Evaluate answers coverage for device deviceID at instant at, given all
// the (unretired) contracts of its customer. Contract dates are calendar
// dates in the customer's time zone loc.
func Evaluate(deviceID string, contracts []Contract, loc *time.Location, at time.Time) Coverage {
	if len(contracts) == 0 {
		return coverage(Billable, ReasonNoContract, nil)
	}
	y, m, d := at.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)

	// When no contract covers, the reason shown is the most actionable one:
	// a payment or activation problem on a current contract beats validity.
	rank := map[string]int{ReasonNotPaidUp: 4, ReasonNotActivated: 3, ReasonContractNotStarted: 2, ReasonContractExpired: 1}
	var best string
	var bestContract, defectsOnly *Contract
	named := false
	for i := range contracts {
		k := &contracts[i]
		if !k.Names(deviceID) {
			continue
		}
		named = true
		for _, w := range k.Warranties {
			if !w.Applies(deviceID, today) {
				continue
			}
			if w.Covers == "support" {
				return coverage(Covered, ReasonWarrantySupport, k)
			}
			defectsOnly = k
		}
		var reason string
		switch {
		case today.Before(k.StartsOn):
			reason = ReasonContractNotStarted
		case today.After(k.EndsOn):
			reason = ReasonContractExpired
		case k.ActivatedOn == nil || today.Before(*k.ActivatedOn):
			reason = ReasonNotActivated
		case !k.PaidUp:
			reason = ReasonNotPaidUp
		default:
			return coverage(Covered, ReasonContract, k)
		}
		if rank[reason] > rank[best] {
			best, bestContract = reason, k
		}
	}
	switch {
	case !named:
		return coverage(Billable, ReasonDeviceNotListed, nil)
	case defectsOnly != nil:
		return coverage(Billable, ReasonWarrantyOnly, defectsOnly)
	default:
		return coverage(Billable, best, bestContract)
	}
}

// Names reports whether the contract lists the device (or all devices).
func (k *Contract) Names(deviceID string) bool {
	return k.AllDevices || slices.Contains(k.DeviceIDs, deviceID)
}

// Applies reports whether the warranty window covers the device on day.
func (w Warranty) Applies(deviceID string, day time.Time) bool {
	if day.Before(w.StartsOn) || day.After(w.EndsOn) {
		return false
	}
	return len(w.DeviceIDs) == 0 || slices.Contains(w.DeviceIDs, deviceID)
}

func decodeWarranties(b []byte) ([]Warranty, error) {
	var raw []struct {
		StartsOn  string   `json:"starts_on"`
		EndsOn    string   `json:"ends_on"`
		Covers    string   `json:"covers"`
		DeviceIDs []string `json:"device_ids"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]Warranty, 0, len(raw))
	for _, r := range raw {
		from, err1 := time.Parse(time.DateOnly, r.StartsOn)
		to, err2 := time.Parse(time.DateOnly, r.EndsOn)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out = append(out, Warranty{StartsOn: from, EndsOn: to, Covers: r.Covers, DeviceIDs: r.DeviceIDs})
	}
	return out, nil
}
