package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

func p50(c *http.Client, url string, n int) (time.Duration, time.Duration) {
	var lat []time.Duration
	for i := 0; i < n+200; i++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", "application/json")
		s := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			panic(fmt.Sprint(url, resp.StatusCode))
		}
		if i >= 200 {
			lat = append(lat, time.Since(s))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

func main() {
	ctx := context.Background()
	bin := os.Args[1]
	c, err := harness.NewCluster(ctx, "/work/main/_output/bin", "/tmp/zexp")
	if err != nil {
		panic(err)
	}
	defer c.Stop()
	type r struct{ s *harness.Server; e error }
	ach, bch := make(chan r), make(chan r)
	go func() { s, e := c.StartServer(ctx, harness.ServerOptions{Name: "za", Binary: bin, IP: "127.0.0.121", Gate: harness.On(true), Args: []string{"--runtime-config=batch/v1=false"}}); ach <- r{s, e} }()
	go func() { s, e := c.StartServer(ctx, harness.ServerOptions{Name: "zb", Binary: bin, IP: "127.0.0.122", Gate: harness.On(true)}); bch <- r{s, e} }()
	ar, br := <-ach, <-bch
	if ar.e != nil || br.e != nil {
		panic(fmt.Sprint(ar.e, br.e))
	}
	a, b := ar.s, br.s
	b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{})
	b.Client().BatchV1().Jobs("bench").Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: "Never", Containers: []corev1.Container{{Name: "x", Image: "x"}}}}}}, metav1.CreateOptions{})
	ac, bc := a.HTTPClient(), b.HTTPClient()
	job := "/apis/batch/v1/namespaces/bench/jobs/bench"
	for i := 0; i < 240; i++ {
		resp, err := ac.Get(a.URL + job)
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(500 * time.Millisecond)
	}
	for round := 0; round < 2; round++ {
		for _, t := range []struct{ name string; c *http.Client; url string }{
			{"B job", bc, b.URL + job},
			{"A job (proxied)", ac, a.URL + job},
			{"B job rv=0", bc, b.URL + job + "?resourceVersion=0"},
			{"A job rv=0 (proxied)", ac, a.URL + job + "?resourceVersion=0"},
			{"A ns default", ac, a.URL + "/api/v1/namespaces/default"},
			{"B ns default", bc, b.URL + "/api/v1/namespaces/default"},
			{"A /version", ac, a.URL + "/version"},
			{"B /version", bc, b.URL + "/version"},
			{"A /healthz", ac, a.URL + "/healthz"},
		} {
			m, p := p50(t.c, t.url, 1500)
			fmt.Printf("%-24s p50 %7.3f ms  p99 %7.3f ms\n", t.name, float64(m)/1e6, float64(p)/1e6)
		}
	}
	prof := func(s *harness.Server, path string) {
		resp, err := s.HTTPClient().Get(s.URL + "/debug/pprof/profile?seconds=10")
		if err != nil { panic(err) }
		data, _ := io.ReadAll(resp.Body)
		os.WriteFile(path, data, 0644)
	}
	done := make(chan bool, 2)
	go func() { prof(a, "/tmp/a-c1.pprof"); done <- true }()
	go func() { prof(b, "/tmp/b-c1.pprof"); done <- true }()
	n := 0
	for st := time.Now(); time.Since(st) < 10*time.Second; n++ {
		resp, _ := ac.Get(a.URL + job)
		io.Copy(io.Discard, resp.Body); resp.Body.Close()
	}
	<-done; <-done
	fmt.Println("proxied requests during profile:", n)
	if len(os.Args) > 2 {
		fmt.Println("holding; kill me")
		time.Sleep(time.Hour)
	}
}
