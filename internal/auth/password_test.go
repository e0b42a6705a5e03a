package auth

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("s3cret-enough")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string with the expected parameters", h)
	}
	h2, _ := hashPassword("s3cret-enough")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, c := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "s3cret-enough", true, false},
		{h, "s3cret-enougH", false, false},
		{h, "", false, false},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "x", false, true},
		{"$argon2id$v=19$m=0,t=2,p=1$c2FsdA$a2V5", "x", false, true},
		{"plain", "plain", false, true},
	} {
		ok, err := checkPassword(c.hash, c.pw)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("checkPassword(%q, %q) = %v, %v; want %v, err %v", c.hash, c.pw, ok, err, c.ok, c.err)
		}
	}
}
