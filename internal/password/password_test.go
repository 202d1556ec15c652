package password

import (
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple 42!")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q %v", h, err)
	}
	if ok, err := Verify(h, "correct horse battery staple 42!"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := Verify(h, "correct horse battery staple 43!"); ok {
		t.Fatal("wrong password verified")
	}
	h2, _ := Hash("correct horse battery staple 42!")
	if h2 == h {
		t.Fatal("no salt")
	}
}

func TestVerifyReadsParamsFromTheHash(t *testing.T) {
	h, _ := HashWith("pw", Params{Memory: 1024, Time: 1, Threads: 1, KeyLen: 16})
	if ok, err := Verify(h, "pw"); !ok || err != nil {
		t.Fatalf("old params: %v %v", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, h := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=x$a$b", "$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if ok, err := Verify(h, "pw"); ok || err == nil {
			t.Errorf("%q: %v %v", h, ok, err)
		}
	}
	VerifyDummy("anything") // must not panic
}

func TestCheckStrength(t *testing.T) {
	for _, weak := range []string{"", "password", "12345678", "aaaaaaaaaaaaaaaa"} {
		if CheckStrength(weak) == nil {
			t.Errorf("%q accepted", weak)
		}
	}
	if err := CheckStrength("correct horse battery staple 42!"); err != nil {
		t.Fatal(err)
	}
	if CheckStrength(strings.Repeat("aB3$", 300)) == nil {
		t.Fatal("overlong password accepted")
	}
}
