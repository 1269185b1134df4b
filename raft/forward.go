package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// ForwardFunc delivers cmd to the leader (through the application's own
// RPC, for example an HTTP call to leader.Addr's service) and returns the
// leader's result. It should return the leader's error as is, so that an
// ErrNotLeader from a node that lost leadership meanwhile is recognized.
type ForwardFunc func(ctx context.Context, leader raftdata.Member, cmd []byte) (any, error)

// ProposeOrForward proposes cmd on this node if it leads, and otherwise
// hands it to forward with the leader this node knows. While no leader is
// known, or when the node it tried has stopped leading, it waits a
// heartbeat and tries again, until ctx ends. Only ErrNotLeader is retried:
// it means the command was not appended. Any other error, including a
// timeout with an unknown outcome, is returned to the caller, who decides
// whether retrying is safe (client sessions make it so).
func (n *Node) ProposeOrForward(ctx context.Context, cmd []byte, forward ForwardFunc) (any, error) {
	for {
		res, err := n.Propose(ctx, cmd)
		var nl *NotLeaderError
		if !errors.As(err, &nl) {
			return res, err
		}
		if nl.LeaderID != 0 && nl.LeaderID != n.cfg.ID {
			res, err = forward(ctx, raftdata.Member{ID: nl.LeaderID, Addr: nl.LeaderAddr}, cmd)
			if !errors.Is(err, ErrNotLeader) {
				return res, err
			}
		}
		select {
		case <-time.After(n.cfg.HeartbeatInterval):
		case <-ctx.Done():
			return nil, fmt.Errorf("raft: no leader to forward to: %w (last: %w)", ctx.Err(), err)
		case <-n.stopping:
			return nil, ErrStopped
		}
	}
}
