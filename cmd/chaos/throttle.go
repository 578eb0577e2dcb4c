package main

import (
	"context"
	"errors"
)

func runThrottle(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "throttle")
	return errors.New("not yet")
}
