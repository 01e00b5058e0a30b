package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// certsCommand is `strata certs [add|remove]`: TLS certificates the routers
// serve by SNI (admin).
func (m *Main) certsCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "certs",
		short: "List the TLS certificates routers serve (admin)",
		long: "List the TLS certificates uploaded with strata certs add. Routers serve them over HTTPS,\n" +
			"chosen by the name the client asks for (SNI): an exact name, then a wildcard.",
		args: cobra.NoArgs,
		name: noApp,
		json: true,
		run: func(a *appCall, c *client.Client) error {
			certs, err := c.Certificates(a.ctx)
			if err != nil {
				return err
			}
			return a.print(certs, func() error {
				if len(certs) == 0 {
					fmt.Fprintln(m.Stdout, "No certificates. Upload one with: strata certs add CERT_FILE KEY_FILE")
					return nil
				}
				now := m.Now()
				t := newTable(m.Stdout, "NAME", "DOMAINS", "EXPIRES", "FINGERPRINT")
				for _, ct := range certs {
					expires := ct.NotAfter.UTC().Format("2006-01-02")
					if days := int(ct.NotAfter.Sub(now).Hours() / 24); days < 30 {
						expires += fmt.Sprintf(" (in %d days)", max(days, 0))
					}
					t.row(ct.Name, strings.Join(ct.DNSNames, ","), expires, ct.Fingerprint[:min(16, len(ct.Fingerprint))])
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.certsAddCommand(), m.certsRemoveCommand())
	return cmd
}

func (m *Main) certsAddCommand() *cobra.Command {
	var name string
	var replace bool
	var chain, key string
	cmd := m.appCmd(appSpec{
		use:   "add CERT_FILE KEY_FILE",
		short: "Upload a PEM certificate chain and its private key (admin)",
		long: "Upload a PEM certificate chain (leaf first, then intermediates) and its PEM private key.\n" +
			"Routers serve it for its DNS names within seconds. The key is stored encrypted.\n" +
			"Renew by uploading the new certificate with --replace.",
		args: cobra.ExactArgs(2),
		name: noApp,
		check: func(a *appCall) (err error) {
			if chain, err = readPEMFile(a.args[0], "certificate"); err != nil {
				return err
			}
			key, err = readPEMFile(a.args[1], "private key")
			return err
		},
		run: func(a *appCall, c *client.Client) error {
			ct, err := c.AddCertificate(a.ctx, api.CertificateUpload{Name: name, Certificate: chain, PrivateKey: key, Replace: replace})
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Added certificate %s for %s, valid until %s\n", ct.Name, strings.Join(ct.DNSNames, ", "), ct.NotAfter.UTC().Format("2006-01-02"))
			return nil
		},
	})
	cmd.Flags().StringVar(&name, "name", "", "name of the certificate (default: its first DNS name)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a certificate of the same name (renewal)")
	return cmd
}

func (m *Main) certsRemoveCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "remove NAME",
		short: "Remove an uploaded certificate (admin)",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.RemoveCertificate(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Removed certificate %s\n", a.args[0])
			return nil
		},
	})
	cmd.Aliases = []string{"rm"}
	return cmd
}

// readPEMFile reads a certificate or key file of at most the upload limit.
func readPEMFile(path, what string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the %s file %s: %w — check the path", what, path, err)
	}
	if st.Size() > api.MaxCertificatePEMBytes {
		return "", fmt.Errorf("the %s file %s is larger than %d bytes — pass a PEM file", what, path, api.MaxCertificatePEMBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the %s file %s: %w — check its permissions", what, path, err)
	}
	return string(b), nil
}
