package main

import (
	"context"
	"io"
)

func runAWS(ctx context.Context, cfg *config, stdout, stderr io.Writer) error { return nil }

func runFunctions(ctx context.Context, work string, stdout, stderr io.Writer) error { return nil }
