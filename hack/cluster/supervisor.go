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
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// service is one supervised process of a node.
type service struct {
	name    string
	command func() (path string, args []string, err error)
	ready   func() bool // whether it can start (kubelet: once kubeadm wrote its configuration)

	wanted   bool // what was last asked: running or stopped
	pid      int
	restarts int
	lastExit string
	exited   time.Time
}

// supervisor starts, restarts and stops the services. As PID 1 it also
// reaps every orphan of the node: exits are collected in one place (wait4
// on any child), so no exec.Cmd.Wait may run here.
type supervisor struct {
	mu       sync.Mutex
	services map[string]*service
	byPid    map[int]*service
	wake     chan struct{}
}

func newSupervisor() *supervisor {
	return &supervisor{services: map[string]*service{}, byPid: map[int]*service{}, wake: make(chan struct{}, 1)}
}

func (s *supervisor) add(svc *service) {
	svc.wanted = true // enabled, as the packaged units are
	s.services[svc.name] = svc
}

// run reaps children and keeps every wanted service running.
func (s *supervisor) run() {
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	tick := time.NewTicker(restartDelay)
	defer tick.Stop()
	for {
		s.reap()
		s.mu.Lock()
		for _, name := range slices.Sorted(maps.Keys(s.services)) {
			s.ensure(s.services[name])
		}
		s.mu.Unlock()
		select {
		case <-chld:
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// ensure starts a wanted service that is not running and can start.
// Called with mu held.
func (s *supervisor) ensure(svc *service) {
	if !svc.wanted || svc.pid != 0 || time.Since(svc.exited) < restartDelay || !svc.ready() {
		return
	}
	path, args, err := svc.command()
	if err != nil {
		svc.lastExit = "not started: " + err.Error()
		return
	}
	log, err := os.OpenFile("/var/log/"+svc.name+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		svc.lastExit = "not started: " + err.Error()
		return
	}
	defer log.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		svc.lastExit = "not started: " + err.Error()
		return
	}
	svc.pid = cmd.Process.Pid
	s.byPid[svc.pid] = svc
	_ = cmd.Process.Release()
	fmt.Printf("started %s (pid %d): %s %v\n", svc.name, svc.pid, path, args)
}

// reap collects every exited child; a service's exit is noted, and it is
// started again on a later round once restartDelay has passed.
func (s *supervisor) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		s.mu.Lock()
		if svc, ok := s.byPid[pid]; ok {
			delete(s.byPid, pid)
			svc.pid = 0
			svc.restarts++
			svc.exited = time.Now()
			svc.lastExit = fmt.Sprintf("%s at %s", exitText(ws), time.Now().UTC().Format(time.RFC3339))
			fmt.Printf("%s (pid %d) exited: %s\n", svc.name, pid, svc.lastExit)
		}
		s.mu.Unlock()
	}
}

// kill sends SIGKILL to a running service, which is not a stop: it is
// still wanted, so the supervisor starts it again.
func (s *supervisor) kill(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.services[name]
	if !ok {
		return "", fmt.Errorf("unit %s not found", name)
	}
	if svc.pid == 0 {
		return "", fmt.Errorf("%s is not running", name)
	}
	if err := syscall.Kill(svc.pid, syscall.SIGKILL); err != nil {
		return "", err
	}
	return fmt.Sprintf("killed pid %d", svc.pid), nil
}

// stop ends a service: SIGTERM, then SIGKILL after the grace period.
func (s *supervisor) stop(name string, grace time.Duration) error {
	s.mu.Lock()
	svc, ok := s.services[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("unit %s.service not found", name)
	}
	svc.wanted = false
	pid := svc.pid
	s.mu.Unlock()
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		s.reap()
		if s.pidOf(name) != pid {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return nil
}

// start asks for a service to run; it starts on the supervisor's next
// round.
func (s *supervisor) start(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.services[name]
	if !ok {
		return fmt.Errorf("unit %s.service not found", name)
	}
	svc.wanted = true
	svc.exited = time.Time{} // asked for: no restart delay
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *supervisor) pidOf(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[name].pid
}

// status is a service's state as systemctl is-active prints it.
func (s *supervisor) status(name string) (active bool, line string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.services[name]
	if !ok {
		return false, "", fmt.Errorf("unit %s.service not found", name)
	}
	line = fmt.Sprintf("%s: wanted=%t pid=%d restarts=%d last exit: %s", name, svc.wanted, svc.pid, svc.restarts, svc.lastExit)
	return svc.pid != 0, line, nil
}

// shutdown stops every service, kubelet first.
func (s *supervisor) shutdown(grace time.Duration) {
	for _, name := range []string{"kubelet", "containerd"} {
		_ = s.stop(name, grace)
	}
}

func exitText(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
