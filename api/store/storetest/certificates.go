package storetest

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

func storedCert(name string, notAfter time.Time, key string) *api.StoredCertificate {
	return &api.StoredCertificate{
		Certificate: api.Certificate{
			Name: name, DNSNames: []string{name, "*." + name}, Issuer: "CN=test CA",
			NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter, Fingerprint: "ab" + name,
		},
		ChainPEM:  "-----BEGIN CERTIFICATE-----\n" + name + "\n-----END CERTIFICATE-----\n",
		SealedKey: []byte{1, 0, 255, byte(len(key))},
	}
}

func testCertificates(t *testing.T, s controller.Store) {
	cs, ok := s.(controller.CertificateStore)
	if !ok {
		t.Fatalf("%T does not implement controller.CertificateStore", s)
	}
	ctx := context.Background()
	got, err := cs.Certificates(ctx)
	must(t, "Certificates empty", err)
	if len(got) != 0 {
		t.Fatalf("Certificates on an empty store = %+v", got)
	}
	exp := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	b := storedCert("b.example.com", exp, "kb")
	a := storedCert("a.example.com", exp.Add(time.Hour), "ka")
	must(t, "PutCertificate b", cs.PutCertificate(ctx, b, false))
	must(t, "PutCertificate a", cs.PutCertificate(ctx, a, false))
	if a.CreatedAt.IsZero() {
		t.Fatal("PutCertificate did not fill CreatedAt")
	}
	got, err = cs.Certificates(ctx)
	must(t, "Certificates", err)
	if want := []*api.StoredCertificate{a, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Certificates =\n%+v\nwant\n%+v", got, want)
	}

	// Same name: conflict without replace; replace overwrites every field.
	renewed := storedCert("b.example.com", exp.Add(30*24*time.Hour), "kb2")
	renewed.DNSNames = []string{"b.example.com"}
	renewed.SealedKey = []byte{9, 9, 9}
	wantCode(t, "PutCertificate existing", cs.PutCertificate(ctx, renewed, false), api.EConflict)
	must(t, "PutCertificate replace", cs.PutCertificate(ctx, renewed, true))
	got, err = cs.Certificates(ctx)
	must(t, "Certificates after replace", err)
	if len(got) != 2 || !reflect.DeepEqual(got[1], renewed) || !bytes.Equal(got[1].SealedKey, []byte{9, 9, 9}) {
		t.Fatalf("Certificates after replace = %+v, want a and %+v", got, renewed)
	}

	must(t, "DeleteCertificate", cs.DeleteCertificate(ctx, "a.example.com"))
	wantCode(t, "DeleteCertificate again", cs.DeleteCertificate(ctx, "a.example.com"), api.ENotFound)
	got, err = cs.Certificates(ctx)
	must(t, "Certificates after delete", err)
	if len(got) != 1 || got[0].Name != "b.example.com" {
		t.Fatalf("Certificates after delete = %+v, want b.example.com", got)
	}
	wantCode(t, "empty name", cs.PutCertificate(ctx, storedCert("", exp, "k"), false), api.EInvalid)
	noKey := storedCert("c.example.com", exp, "k")
	noKey.SealedKey = nil
	wantCode(t, "no key", cs.PutCertificate(ctx, noKey, false), api.EInvalid)
}
