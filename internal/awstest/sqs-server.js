// Starts the local-aws-sqs stand-in on 127.0.0.1 at the port given as the
// first argument. Used by internal/awstest; stops on SIGTERM.
const { createSqsServer } = require("local-aws-sqs");
const port = Number(process.argv[2]);
createSqsServer({ port, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false })
  .then(() => console.log(`sqs listening on 127.0.0.1:${port}`))
  .catch((err) => { console.error(err); process.exit(1); });
process.on("SIGTERM", () => process.exit(0));
