package main

import (
	"context"
	"errors"
)

func runCrashLaptop(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "crash")
	r.set("path", "laptop")
	return errors.New("not yet")
}

func runCrashAWS(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "crash")
	r.set("path", "aws")
	return errors.New("not yet")
}
