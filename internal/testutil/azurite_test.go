package testutil

import (
	"net/http"
	"testing"
	"time"
)

func TestStartAzuriteStopRestart(t *testing.T) {
	a := StartAzurite(t)
	get := func() (int, error) {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(a.Endpoint() + "?comp=list")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Unauthenticated: Azurite answers (403), which proves it serves HTTP.
	if code, err := get(); err != nil || code == 0 {
		t.Fatalf("azurite not answering: %d %v", code, err)
	}
	a.Stop()
	if err := a.Running(); err == nil {
		t.Fatal("running after Stop")
	}
	if _, err := get(); err == nil {
		t.Fatal("answering after Stop")
	}
	a.Restart()
	if code, err := get(); err != nil || code == 0 {
		t.Fatalf("not answering after Restart: %d %v", code, err)
	}
	if a.ConnectionString() == "" || a.AccountName() != "devstoreaccount1" {
		t.Fatal("credentials")
	}
}
