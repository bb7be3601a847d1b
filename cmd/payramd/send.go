package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func cmdSend(args []string, stdout, stderr io.Writer) int {
	c := newFlags("send", stderr)
	var source, url, method string
	c.fs.StringVar(&source, "source", "", "source whose provider signs the event")
	c.fs.StringVar(&url, "url", "", "where to send (default: the config's listen address and the source's path)")
	c.fs.StringVar(&method, "method", "POST", "HTTP method")
	files, err := c.parse(args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "payramd send: give exactly one EVENT.json")
		return 2
	}
	snap, _ := loadValid(c.config, stderr)
	if snap == nil {
		return 1
	}
	src, err := pickSource(snap.Config, source)
	if err != nil {
		fmt.Fprintln(stderr, "payramd send:", err)
		return 2
	}
	body, err := os.ReadFile(files[0])
	if err != nil {
		fmt.Fprintln(stderr, "payramd send:", err)
		return 1
	}
	if url == "" {
		url = baseURL(snap.Config.Server.Listen, snap.Config.Server.TLSCert != "") + src.Path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(stderr, "payramd send:", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payramd-send/"+version)
	if err := snap.Table.Provider(src.Name).Sign(req.Header, body, time.Now()); err != nil {
		fmt.Fprintln(stderr, "payramd send: signing:", err)
		return 1
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "payramd send: %v (is the daemon running? start it with `payramd run`)\n", err)
		return 1
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s %s\n%s\n", resp.Proto, resp.Status, strings.TrimSpace(string(respBody)))
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}

// baseURL turns a listen address into a URL a local client can reach.
func baseURL(listen string, tls bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
