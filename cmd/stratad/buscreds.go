package main

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"sync"
)

// busCredentials are the component credentials the embedded NATS server
// checks (docs/tenancy.md, "The bus"). They are known once the controller
// has opened its store; until then only the controller's own in-process
// connection, with a secret that never leaves the process, is let in.
type busCredentials struct {
	mu     sync.RWMutex
	tokens map[string]string
}

func (b *busCredentials) get(component string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.tokens[component]
}

func (b *busCredentials) set(tokens map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = maps.Clone(tokens)
}

// processSecret returns a fresh random secret for this process's own bus
// connection.
func processSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}
