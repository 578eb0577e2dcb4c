package main

import (
	"os"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}
