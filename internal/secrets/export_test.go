package secrets

// SSMEndpoint exposes ssmEndpoint to the tests.
var SSMEndpoint = ssmEndpoint
