package bolt

// SendTaskSize is the delivery.Config.BatchSize for an engine on this
// store. Each of a send task's three ledger calls (claim, re-read,
// settle) costs one bbolt commit, two fdatasyncs and the rewrite of every
// page the task's rows lie on, whatever the task's size, so on this store
// a task is cheaper per reader the more readers it holds: make bench, 6
// variants, 100,000 readers, discard mode, tasks of 100 / 250 / 500 readers
// cost 14.8 / 11.4 / 10.4 µs of CPU a reader. 500 keeps a task well
// inside the engine's 2-minute lease at any SMTP relay's pace above 5
// messages a second, and is also the most readers whose outcome one crash
// can leave unknown.
const SendTaskSize = 500
