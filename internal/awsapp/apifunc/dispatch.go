package apifunc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
)

// LambdaDispatcher is the api function's newsroom.Dispatcher: it invokes
// the digest function asynchronously (InvocationType Event) with an
// awsapp.DigestInvocation, so that an editor's "send" answers at once and
// the fan-out runs for as long as it needs. Lambda keeps the event and
// retries it; fan-out is idempotent.
type LambdaDispatcher struct {
	// Invoke is (*lambda.Client).Invoke. A method value, not the client,
	// so that a binary that executes templates keeps this one operation
	// and not the whole Lambda API (see the note above awsapp.LoadFeedback).
	Invoke       func(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
	FunctionName string
}

// Dispatch asks the digest function to fan digestID out.
func (d *LambdaDispatcher) Dispatch(ctx context.Context, digestID string) error {
	payload, err := json.Marshal(awsapp.DigestInvocation{DigestID: digestID})
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", digestID, err)
	}
	out, err := d.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(d.FunctionName),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("dispatch %s: invoke %s: %w", digestID, d.FunctionName, err)
	}
	if out.FunctionError != nil {
		return fmt.Errorf("dispatch %s: invoke %s: %s", digestID, d.FunctionName, aws.ToString(out.FunctionError))
	}
	return nil
}
