package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
)

// certsCommand is `strata certs [add|remove]`: TLS certificates the routers
// serve by SNI (admin).
func (m *Main) certsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the TLS certificates routers serve (admin)",
		Long: "List the TLS certificates uploaded with strata certs add. Routers serve them over HTTPS,\n" +
			"chosen by the name the client asks for (SNI): an exact name, then a wildcard.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client()
			if err != nil {
				return err
			}
			certs, err := c.Certificates(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if certs == nil {
					certs = []api.Certificate{}
				}
				return printJSON(m.Stdout, certs)
			}
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
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(m.certsAddCommand(), m.certsRemoveCommand())
	return cmd
}

func (m *Main) certsAddCommand() *cobra.Command {
	var name string
	var replace bool
	cmd := &cobra.Command{
		Use:   "add CERT_FILE KEY_FILE",
		Short: "Upload a PEM certificate chain and its private key (admin)",
		Long: "Upload a PEM certificate chain (leaf first, then intermediates) and its PEM private key.\n" +
			"Routers serve it for its DNS names within seconds. The key is stored encrypted.\n" +
			"Renew by uploading the new certificate with --replace.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain, err := readPEMFile(args[0], "certificate")
			if err != nil {
				return err
			}
			key, err := readPEMFile(args[1], "private key")
			if err != nil {
				return err
			}
			c, err := m.client()
			if err != nil {
				return err
			}
			ct, err := c.AddCertificate(cmd.Context(), api.CertificateUpload{Name: name, Certificate: chain, PrivateKey: key, Replace: replace})
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Added certificate %s for %s, valid until %s\n", ct.Name, strings.Join(ct.DNSNames, ", "), ct.NotAfter.UTC().Format("2006-01-02"))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the certificate (default: its first DNS name)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a certificate of the same name (renewal)")
	return cmd
}

func (m *Main) certsRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove an uploaded certificate (admin)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client()
			if err != nil {
				return err
			}
			if err := c.RemoveCertificate(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Removed certificate %s\n", args[0])
			return nil
		},
	}
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
