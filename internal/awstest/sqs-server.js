// Starts the local-aws-sqs stand-in at the port given as the first
// argument, on the host given as the second (127.0.0.1 when absent). Used
// by internal/awstest; stops on SIGTERM.
const { createSqsServer } = require("local-aws-sqs");
const port = Number(process.argv[2]);
const hostname = process.argv[3] || "127.0.0.1";
createSqsServer({ port, hostname, emulateQueueCreationLifecycle: false })
  .then(() => console.log(`sqs listening on ${hostname}:${port}`))
  .catch((err) => { console.error(err); process.exit(1); });
process.on("SIGTERM", () => process.exit(0));
