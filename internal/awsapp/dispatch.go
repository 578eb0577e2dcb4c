package awsapp

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// DigestInvocation is the event the api function sends the digest function
// to fan a digest out: {"digestId": "daily-2026-11-26"}.
type DigestInvocation struct {
	DigestID string `json:"digestId"`
}

// Invoker is the part of the Lambda API the dispatcher calls;
// *lambda.Client is one.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// LambdaDispatcher is the api function's newsroom.Dispatcher: it invokes
// the digest function asynchronously (InvocationType Event) with a
// DigestInvocation, so that an editor's "send" answers at once and the
// fan-out runs for as long as it needs. Lambda keeps the event and retries
// it; fan-out is idempotent.
type LambdaDispatcher struct {
	Client       Invoker
	FunctionName string
}

// Dispatch asks the digest function to fan digestID out.
func (d *LambdaDispatcher) Dispatch(ctx context.Context, digestID string) error {
	payload, err := json.Marshal(DigestInvocation{DigestID: digestID})
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", digestID, err)
	}
	out, err := d.Client.Invoke(ctx, &lambda.InvokeInput{
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
