// Command netprobe is the e2e confinement test's app: from inside its
// instance it reports its own address and tries connections it is given.
//
//	GET /            "netprobe <app>"
//	GET /self        its eth0 address and $PORT ("10.213.0.2:8080")
//	GET /gateway     its default route's gateway
//	GET /dial?addr=HOST:PORT
//	                 "ok" when a TCP connection to HOST:PORT opens, else "fail: <error>"
//	GET /get?addr=HOST:PORT&host=H&path=P
//	                 GET http://HOST:PORT/P with Host H: "<status> <body>" or "fail: <error>"
//
// "GW" as HOST means the gateway.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "netprobe %s\n", os.Getenv("STRATA_APP"))
	})
	http.HandleFunc("/self", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, net.JoinHostPort(ownAddr(), port))
	})
	http.HandleFunc("/gateway", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, gateway()) })
	http.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", target(r.URL.Query().Get("addr")), 3*time.Second)
		if err != nil {
			fmt.Fprintf(w, "fail: %v", err)
			return
		}
		c.Close()
		fmt.Fprint(w, "ok")
	})
	http.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req, err := http.NewRequest("GET", "http://"+target(q.Get("addr"))+q.Get("path"), nil)
		if err != nil {
			fmt.Fprintf(w, "fail: %v", err)
			return
		}
		req.Host = q.Get("host")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			fmt.Fprintf(w, "fail: %v", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(w, "%d %s", resp.StatusCode, b)
	})
	log.Printf("netprobe listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}

func target(addr string) string {
	if rest, ok := strings.CutPrefix(addr, "GW:"); ok {
		return net.JoinHostPort(gateway(), rest)
	}
	return addr
}

// ownAddr is the first IPv4 address of a non-loopback interface.
func ownAddr() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				return p.Addr().String()
			}
		}
	}
	return ""
}

// gateway is the default route's gateway, from /proc/net/route.
func gateway() string {
	b, _ := os.ReadFile("/proc/net/route")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			if v, err := strconv.ParseUint(f[2], 16, 32); err == nil {
				return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}).String()
			}
		}
	}
	return ""
}
