package assets

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func fmtAll(v any) string {
	j, _ := json.Marshal(v)
	y, _ := yaml.Marshal(v)
	return fmt.Sprintf("%v %+v %#v %s %q %s %s", v, v, v, v, v, j, y)
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("hunter2-hunter2")
	if got := fmtAll(s); strings.Contains(got, "hunter2") {
		t.Fatalf("secret leaked: %s", got)
	}
	if s.Reveal() != "hunter2-hunter2" {
		t.Fatal("Reveal lost the value")
	}
}
