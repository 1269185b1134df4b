// Package guides holds raftkit's guides (markdown); its test compiles every Go code block in them.
package guides
