/*
Copyright 2026 The Mixed Version Proxy Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// A node's agent takes one line a connection on its control socket,
// "<verb> <unit>", and answers one line, "ok <text>" or "error <text>".
// The node's systemctl (this binary under that name, first on the node's
// PATH) speaks it, so kubeadm's `systemctl restart kubelet` reaches the
// agent; so does the harness, through /proc/<agent pid>/root.

func serveControl(sup *supervisor) error {
	l, err := net.Listen("unix", agentSocket)
	if err != nil {
		return err
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go handleControl(sup, conn)
		}
	}()
	return nil
}

func handleControl(sup *supervisor, conn net.Conn) {
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	text, err := control(sup, strings.Fields(line))
	if err != nil {
		fmt.Fprintf(conn, "error %s\n", err)
		return
	}
	fmt.Fprintf(conn, "ok %s\n", text)
}

func control(sup *supervisor, words []string) (string, error) {
	if len(words) != 2 {
		return "", fmt.Errorf("want <verb> <unit>, got %q", strings.Join(words, " "))
	}
	verb, unit := words[0], strings.TrimSuffix(words[1], ".service")
	switch verb {
	case "start":
		return "", sup.start(unit)
	case "stop":
		return "", sup.stop(unit, 15*time.Second)
	case "restart":
		if err := sup.stop(unit, 15*time.Second); err != nil {
			return "", err
		}
		return "", sup.start(unit)
	case "kill":
		// What the OOM killer or a crash does: the supervisor restarts it.
		return sup.kill(unit)
	case "is-active", "status":
		active, line, err := sup.status(unit)
		if err != nil {
			return "", err
		}
		state := "inactive"
		if active {
			state = "active"
		}
		return state + " " + line, nil
	}
	return "", fmt.Errorf("unknown verb %q", verb)
}

// ask sends one request to an agent's socket and returns its answer.
func ask(socket string, verb, unit string) (string, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s\n", verb, unit); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	line = strings.TrimSpace(line)
	if text, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimSpace(text), nil
	}
	return "", fmt.Errorf("%s", strings.TrimSpace(strings.TrimPrefix(line, "error")))
}

// systemctl is the node's systemctl: the verbs kubeadm uses, for the units
// the agent runs. Exit codes follow systemctl's: 3 inactive, 4 no unit.
func systemctl(args []string) int {
	var words []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(os.Stderr, "systemctl (mvp node): no verb")
		return 1
	}
	verb := words[0]
	switch {
	case verb == "daemon-reload":
		return 0
	case len(words) < 2:
		fmt.Fprintf(os.Stderr, "systemctl (mvp node): %s needs a unit\n", verb)
		return 1
	case slices.Contains([]string{"enable", "disable", "is-enabled"}, verb):
		if verb == "is-enabled" {
			fmt.Println("enabled")
		}
		return 0
	}
	return systemctlAsk(verb, words[1:])
}

func systemctlAsk(verb string, units []string) int {
	code := 0
	for _, unit := range units {
		text, err := ask(agentSocket, verb, unit)
		if err != nil {
			fmt.Fprintf(os.Stderr, "systemctl (mvp node): %s %s: %v\n", verb, unit, err)
			if strings.Contains(err.Error(), "not found") {
				return 4
			}
			return 1
		}
		if verb == "is-active" || verb == "status" {
			state, rest, _ := strings.Cut(text, " ")
			if verb == "is-active" {
				fmt.Println(state)
			} else {
				fmt.Println(rest)
			}
			if state != "active" {
				code = 3
			}
		}
	}
	return code
}
