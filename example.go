// Package payramd holds what the binary embeds from the repository root.
package payramd

import _ "embed"

// ExampleConfig is rules.example.yaml: the config `payramd run` uses when it
// finds no config file.
//
//go:embed rules.example.yaml
var ExampleConfig []byte
