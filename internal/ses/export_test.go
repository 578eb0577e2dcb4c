package ses

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// NoBackoff makes m retry throttled sends without waiting, for fast tests.
func NoBackoff(m *Mailer) {
	m.retryer = sendRetryer(retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil }))
}
