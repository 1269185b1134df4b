package engine

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft/internal/quorum"
)

// Errors returned by engine inputs. The runtime maps them to the public
// errors of package raft.
var (
	ErrNotLeader     = errors.New("engine: not the leader")
	ErrTransferring  = errors.New("engine: leadership transfer in progress")
	ErrConfigPending = errors.New("engine: a configuration change is pending")
	ErrUnknownPeer   = errors.New("engine: unknown peer")
	ErrWrongTarget   = errors.New("engine: message for another group or node")
	ErrInitialized   = errors.New("engine: already initialized with another configuration")
	// ErrBadConfigChange refuses a configuration that does not follow from
	// the one in force (ProposeConfig).
	ErrBadConfigChange = errors.New("engine: configuration does not follow from the one in force")
)

// Config parameterizes an engine. Times are in ticks: the runtime calls Tick
// at a fixed interval.
type Config struct {
	ID    NodeID
	Group GroupID
	// ElectionTicks is the minimum election timeout; each node waits a
	// random timeout in [ElectionTicks, 2*ElectionTicks) (Raft paper §5.2).
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval.
	HeartbeatTicks int
	// LeaseTicks is how long a leader may serve reads after a quorum last
	// acknowledged it, measured from when the acknowledged heartbeat was
	// sent. Zero disables lease reads. It must be below ElectionTicks by a
	// margin covering clock drift.
	LeaseTicks int
	// MaxMsgBytes caps the entries of one MsgApp (at least one is sent).
	MaxMsgBytes int
	// MaxInflightMsgs and MaxInflightBytes bound the unacknowledged MsgApps
	// per follower (pipelining window). MaxInflightBytes 0 means no bound.
	MaxInflightMsgs  int
	MaxInflightBytes int
	// CacheBytes bounds the entry cache beyond entries not yet durable.
	CacheBytes int
	// Rand returns a pseudo-random int in [0, n). The engine draws election
	// timeouts from it and nothing else, so a seeded source makes runs
	// reproducible.
	Rand func(n int) int
}

// TermRun records that entries from Start onward have term Term, up to the
// next run's Start.
type TermRun struct {
	Start uint64
	Term  uint64
}

// ConfigEntry is an EntryConfig entry's index and decoded membership.
type ConfigEntry struct {
	Index      uint64
	Membership Membership
}

// InitialState is what the runtime read from storage at start.
type InitialState struct {
	HardState  HardState
	Snapshot   SnapshotMeta
	FirstIndex uint64
	LastIndex  uint64
	// Runs give the term of every entry in [FirstIndex, LastIndex].
	Runs []TermRun
	// Configs are the configuration entries in [FirstIndex, LastIndex].
	Configs []ConfigEntry
	// Tail optionally seeds the entry cache: the newest entries, ending at
	// LastIndex.
	Tail []Entry

	tailLimit int
	tailBytes int
}

// Observe scans a page of stored entries, in log order, to build Runs,
// Configs and Tail. Pages must be passed in order and without gaps. Up to
// tailBytes of the newest entries are kept as the cache's seed.
func (s *InitialState) Observe(ents []Entry, tailBytes int) error {
	s.tailLimit = tailBytes
	for i := range ents {
		e := &ents[i]
		if n := len(s.Runs); n == 0 || s.Runs[n-1].Term != e.Term {
			if n > 0 && e.Term < s.Runs[n-1].Term {
				return fmt.Errorf("%w: term goes back at index %d (%d after %d)", ErrMalformed, e.Index, e.Term, s.Runs[n-1].Term)
			}
			s.Runs = append(s.Runs, TermRun{Start: e.Index, Term: e.Term})
		}
		if e.Type == EntryConfig {
			m, err := DecodeMembership(e.Data)
			if err != nil {
				return fmt.Errorf("config entry %d: %w", e.Index, err)
			}
			s.Configs = append(s.Configs, ConfigEntry{Index: e.Index, Membership: m})
		}
		s.Tail = append(s.Tail, *e)
		s.tailBytes += e.Size()
	}
	k := 0
	for s.tailBytes > s.tailLimit && k < len(s.Tail) {
		s.tailBytes -= s.Tail[k].Size()
		k++
	}
	if k > 0 {
		s.Tail = append([]Entry(nil), s.Tail[k:]...)
	}
	return nil
}

// ApplyBatch is a range of committed entries to apply, in order.
// Entries holds the range's suffix that was still cached, possibly all of
// it; the entries from Lo up to the first cached one must be read from
// storage (they are durable: only durable entries leave the cache).
type ApplyBatch struct {
	Lo, Hi  uint64
	Entries []Entry
}

// Fetch asks the runtime to read entries [Lo, Hi) from storage, at most
// MaxBytes of them, for replication to Peer, and hand them back through
// Fetched.
type Fetch struct {
	Peer     NodeID
	Lo, Hi   uint64
	MaxBytes int
}

// ReadState says that read request Ctx may be served once the state
// machine has applied Index.
type ReadState struct {
	Ctx   uint64
	Index uint64
}

// Ready is what the engine asks the runtime to do after a batch of inputs.
// The runtime must make HardState and Entries durable (in one write, after
// every earlier Ready's), send Messages at once, send AfterPersist only once
// this Ready's and every earlier Ready's writes are durable, then report
// Persisted.
type Ready struct {
	HardState    *HardState
	Entries      []Entry
	Messages     []Message
	AfterPersist []Message
	Apply        ApplyBatch
	Fetches      []Fetch
	ReadStates   []ReadState
	// FailedReads are read requests that can no longer be confirmed
	// because this node stopped leading.
	FailedReads []uint64
	// TransferAborted reports a leadership transfer that timed out.
	TransferAborted bool
	// ConfigChanged reports a membership change since the last Ready.
	ConfigChanged bool
	// SendSnapshots lists followers to stream the latest snapshot to.
	SendSnapshots []NodeID
	// SnapshotAcks are acknowledgements for the runtime's snapshot senders.
	SnapshotAcks []SnapshotAck
	// SnapshotChunks are MsgSnap chunks from the leader to write to storage
	// (in order, with the other writes) and acknowledge.
	SnapshotChunks []Message
}

// IsEmpty reports whether rd asks for nothing.
func (rd *Ready) IsEmpty() bool {
	return rd.HardState == nil && len(rd.Entries) == 0 && len(rd.Messages) == 0 &&
		len(rd.AfterPersist) == 0 && rd.Apply.Hi == 0 && len(rd.Fetches) == 0 &&
		len(rd.ReadStates) == 0 && len(rd.FailedReads) == 0 && !rd.TransferAborted && !rd.ConfigChanged &&
		len(rd.SendSnapshots) == 0 && len(rd.SnapshotAcks) == 0 && len(rd.SnapshotChunks) == 0
}

// Engine is the Raft state machine of one node in one group.
type Engine struct {
	cfg   Config
	id    NodeID
	group GroupID

	term uint64
	vote NodeID
	lead NodeID
	role Role
	log  *raftLog

	// savedHS is the hard state last handed to the persist path.
	savedHS HardState

	membership Membership
	quorum     quorum.Joint
	configs    []ConfigEntry // config entries in the log after the snapshot
	snapConfig Membership    // membership of the latest snapshot
	// pendingConfIndex is the index of the newest config entry; a new
	// change may be proposed only once it is committed.
	pendingConfIndex uint64
	configChanged    bool

	prs map[NodeID]*progress
	// peers holds the same progress records in ID order: every loop over
	// peers uses it, so that message order, and with it a whole run, is
	// reproducible (map iteration order is random).
	peers []*progress
	// departDone lists removed nodes this leader stopped telling.
	departDone map[NodeID]bool
	votes      map[uint64]bool

	now uint64 // ticks since start, on the monotonic clock
	// wallLead is how many ticks the wall clock has gained on the
	// monotonic clock since start (SetWallLead): time the monotonic clock
	// may have missed, which only the lease counts.
	wallLead          uint64
	electionElapsed   int
	heartbeatElapsed  int
	randomizedTimeout int

	transferee      NodeID
	transferAborted bool

	reads readState

	commitDirty   bool
	sentCommitMax uint64

	msgs           []Message
	afterPersist   []Message
	fetches        []Fetch
	sendSnapshots  []NodeID
	snapshotAcks   []SnapshotAck
	snapshotChunks []Message
}

// New returns an engine restored to st.
func New(cfg Config, st InitialState) (*Engine, error) {
	if cfg.ID == 0 {
		return nil, errors.New("engine: ID must not be 0")
	}
	if cfg.ElectionTicks <= cfg.HeartbeatTicks || cfg.HeartbeatTicks <= 0 {
		return nil, fmt.Errorf("engine: election ticks (%d) must exceed heartbeat ticks (%d) > 0", cfg.ElectionTicks, cfg.HeartbeatTicks)
	}
	if cfg.LeaseTicks >= cfg.ElectionTicks {
		return nil, fmt.Errorf("engine: lease ticks (%d) must be below election ticks (%d)", cfg.LeaseTicks, cfg.ElectionTicks)
	}
	if cfg.Rand == nil {
		return nil, errors.New("engine: Rand is required")
	}
	if cfg.MaxInflightMsgs <= 0 {
		cfg.MaxInflightMsgs = 256
	}
	if cfg.MaxMsgBytes <= 0 {
		cfg.MaxMsgBytes = 1 << 20
	}
	e := &Engine{
		cfg:   cfg,
		id:    cfg.ID,
		group: cfg.Group,
		log:   newLog(cfg.CacheBytes),
		prs:   map[NodeID]*progress{},
		votes: map[uint64]bool{},
	}
	runs := make([]termRun, len(st.Runs))
	for i, r := range st.Runs {
		runs[i] = termRun{start: r.Start, term: r.Term}
	}
	first := st.FirstIndex
	if first == 0 {
		first = st.Snapshot.Index + 1
	}
	last := max(st.LastIndex, st.Snapshot.Index)
	if err := e.log.restore(st.Snapshot, first, last, st.HardState.Commit, runs, st.Tail); err != nil {
		return nil, err
	}
	if st.HardState.Term < e.log.lastTerm() {
		return nil, fmt.Errorf("engine: hard state term %d below last log term %d", st.HardState.Term, e.log.lastTerm())
	}
	e.term, e.vote = st.HardState.Term, st.HardState.Vote
	e.savedHS = HardState{Term: e.term, Vote: e.vote, Commit: e.log.committed}
	e.snapConfig = st.Snapshot.Membership.Clone()
	e.configs = append(e.configs, st.Configs...)
	e.refreshConfig()
	e.configChanged = false
	e.becomeFollower(e.term, 0)
	if cfg.LeaseTicks > 0 {
		// A restarted node has forgotten which leader it last heard from,
		// so it may not grant votes until a full election timeout passes:
		// otherwise a leader's lease could be broken by a quick restart.
		e.electionElapsed = 0
		e.lead = 0
		e.reads.quietUntil = uint64(cfg.ElectionTicks)
	}
	return e, nil
}

// ID returns this node's ID.
func (e *Engine) ID() NodeID { return e.id }

// Term returns the current term.
func (e *Engine) Term() uint64 { return e.term }

// Role returns the current role.
func (e *Engine) Role() Role { return e.role }

// Leader returns the leader this node knows of, or 0.
func (e *Engine) Leader() NodeID { return e.lead }

// Membership returns the configuration in force (the newest in the log).
func (e *Engine) Membership() Membership { return e.membership }

// Committed returns the commit index.
func (e *Engine) Committed() uint64 { return e.log.committed }

// LastIndex returns the index of the last entry in the log.
func (e *Engine) LastIndex() uint64 { return e.log.last }

// Tick advances the engine's clock by one tick. It is Advance(1).
func (e *Engine) Tick() { e.Advance(1) }

// Advance moves the engine's clock forward by ticks: all the time that
// elapsed since the last call, however long, not one tick per wake-up. The
// runtime derives it from a monotonic clock, so that a process paused for
// seconds (SIGSTOP, a VM stall, a long GC pause) sees those seconds pass
// when it resumes: its lease has run out, its check-quorum fails, and as a
// follower its vote suppression has lapsed. Counting wake-ups instead would
// let a leader resumed after a pause believe its lease still holds while
// another leader has been elected and has committed writes.
//
// The runtime must advance the clock to the current time before it steps
// messages it has already received and before LeaseRead: a follower that
// resets its election timer on a heartbeat must not have the time it spent
// paused before receiving it counted after the reset.
func (e *Engine) Advance(ticks uint64) {
	if ticks == 0 {
		return
	}
	e.now += ticks
	e.electionElapsed = addTicks(e.electionElapsed, ticks)
	if e.role == Leader {
		e.tickLeader(ticks)
		return
	}
	if e.mayCampaign() && e.electionElapsed >= e.randomizedTimeout {
		e.electionElapsed = 0
		e.campaign(true, false)
	}
}

// SetWallLead tells the engine how much, in ticks, the wall clock has
// gained on the monotonic clock since the engine started, all gains added
// up (a step back is no gain, and does not cancel earlier ones); it only
// grows.
// The monotonic clock stops while the whole host is suspended (a laptop
// asleep, a VM suspended and resumed), and the wall clock does not: a
// leader counts that difference against its lease, so a suspended leader
// finds its lease expired on resume. Nothing else counts it: a follower
// that took a wall clock step forward for elapsed time would grant votes
// early and break another node's lease. A leader's lease only ever ends
// sooner for it (a wall clock stepped forward costs lease reads until the
// next heartbeat round, nothing more).
func (e *Engine) SetWallLead(ticks uint64) { e.wallLead = max(e.wallLead, ticks) }

// addTicks adds ticks to a timer, saturating far beyond any timeout.
func addTicks(v int, ticks uint64) int {
	const ceiling = 1 << 30
	if ticks >= ceiling || v >= ceiling-int(ticks) {
		return ceiling
	}
	return v + int(ticks)
}

func (e *Engine) tickLeader(ticks uint64) {
	e.heartbeatElapsed = addTicks(e.heartbeatElapsed, ticks)
	if e.electionElapsed >= e.cfg.ElectionTicks {
		e.electionElapsed = 0
		if !e.checkQuorum() {
			e.becomeFollower(e.term, 0)
			return
		}
		if e.transferee != 0 {
			e.transferee = 0
			e.transferAborted = true
		}
		e.syncProgress() // gives up on removed nodes silent for too long
	}
	if e.heartbeatElapsed >= e.cfg.HeartbeatTicks {
		e.heartbeatElapsed = 0
		e.bcastHeartbeat()
	}
	e.tickSnapshots()
}

// checkQuorum reports whether a quorum was heard from within the last
// election timeout (Raft thesis §6.2). It reads the time of each peer's
// last message rather than a flag set since the previous check, so that
// after a long pause the check sees how old that contact really is.
func (e *Engine) checkQuorum() bool {
	active := func(id uint64) uint64 {
		if NodeID(id) == e.id {
			return 1
		}
		if pr := e.prs[NodeID(id)]; pr != nil && e.now-pr.lastContact < uint64(e.cfg.ElectionTicks) {
			return 1
		}
		return 0
	}
	return e.quorum.CommittedIndex(active) == 1
}

// Step processes a message received from the network.
func (e *Engine) Step(m Message) error {
	if m.Group != e.group || m.To != e.id {
		return fmt.Errorf("%w: group %d to %d", ErrWrongTarget, m.Group, m.To)
	}
	if (m.Type == MsgVote || m.Type == MsgPreVote) && !e.membership.IsEmpty() && !e.membership.Contains(m.From) {
		// A removed (or never added) node must not disrupt the cluster
		// (thesis §4.2.3): its requests are ignored, terms included.
		return nil
	}
	switch {
	case m.Term > e.term:
		if (m.Type == MsgVote || m.Type == MsgPreVote) && !m.Transfer && e.inLease() {
			// Vote suppression: a leader is known to be alive, so this
			// candidate is partitioned or slow (thesis §4.2.3).
			return nil
		}
		switch {
		case m.Type == MsgPreVote:
			// A pre-vote changes no one's term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// Granted pre-votes carry the term the campaign will use.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			e.becomeFollower(m.Term, m.From)
		default:
			e.becomeFollower(m.Term, 0)
		}
	case m.Term < e.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat:
			// A stale leader: tell it our term so that it steps down.
			e.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			e.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
		}
		return nil
	}
	if pr := e.prs[m.From]; pr != nil {
		pr.lastContact = e.now
	}
	switch m.Type {
	case MsgVote, MsgPreVote:
		e.handleVoteRequest(m)
		return nil
	}
	switch e.role {
	case Leader:
		e.stepLeader(m)
	case Candidate, PreCandidate:
		e.stepCandidate(m)
	default:
		e.stepFollower(m)
	}
	return nil
}

// inLease reports whether this node heard from a live leader within the
// minimum election timeout, or restarted too recently to know.
func (e *Engine) inLease() bool {
	if e.now < e.reads.quietUntil {
		return true
	}
	return e.lead != 0 && e.electionElapsed < e.cfg.ElectionTicks
}

func (e *Engine) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		e.electionElapsed = 0
		e.lead = m.From
		e.handleAppend(m)
	case MsgHeartbeat:
		e.electionElapsed = 0
		e.lead = m.From
		e.log.commitTo(min(m.Commit, e.log.last))
		e.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context})
	case MsgTimeoutNow:
		if e.promotable() {
			e.campaign(false, true)
		}
	case MsgSnap:
		e.electionElapsed = 0
		e.lead = m.From
		e.handleSnapshotChunk(m)
	}
}

// send queues m. Messages a leader sends on its own account go out at once;
// everything else (votes, responses) waits for the preceding writes.
func (e *Engine) send(m Message) {
	m.From = e.id
	m.Group = e.group
	if m.Term == 0 {
		m.Term = e.term
	}
	if e.role == Leader {
		if m.Type == MsgTimeoutNow {
			e.reads.timeoutNowSent = true // no more lease reads this term (LeaseRead)
		}
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgTimeoutNow, MsgSnap:
			if e.msgs == nil {
				e.msgs = make([]Message, 0, len(e.prs))
			}
			e.msgs = append(e.msgs, m)
			return
		}
	}
	if m.Type == MsgAppResp && !m.Reject {
		// Acknowledgements are cumulative: a newer one to the same leader
		// in the same term replaces the one before it.
		if k := len(e.afterPersist); k > 0 {
			p := &e.afterPersist[k-1]
			if p.Type == MsgAppResp && !p.Reject && p.To == m.To && p.Term == m.Term && p.Index <= m.Index {
				*p = m
				return
			}
		}
	}
	e.afterPersist = append(e.afterPersist, m)
}

// Persisted reports that entries up to index (whose term is term) and every
// hard state handed out before them are durable.
func (e *Engine) Persisted(index, term uint64) {
	e.log.persistedTo(index, term)
	if e.role == Leader {
		e.commitDirty = true
	}
}

// Ready collects what the runtime must do. Call it after each batch of
// inputs; it resets the pending outputs.
func (e *Engine) Ready() Ready {
	var rd Ready
	if e.role == Leader {
		if e.commitDirty {
			e.commitDirty = false
			e.maybeCommit()
			e.maybeLeaveJoint()
			e.maybeStepDownRemoved()
		}
		e.flushReads()
		e.flushCommit()
	}
	rd.Entries = e.log.unpersisted()
	hs := HardState{Term: e.term, Vote: e.vote, Commit: e.log.committed}
	if hs.Term != e.savedHS.Term || hs.Vote != e.savedHS.Vote || len(rd.Entries) > 0 && hs != e.savedHS {
		e.savedHS = hs
		rd.HardState = &hs
	}
	if e.log.committed > e.log.applying {
		lo, hi := e.log.applying+1, e.log.committed
		rd.Apply = ApplyBatch{Lo: lo, Hi: hi}
		if from := max(lo, e.log.cacheFirst); from <= hi {
			rd.Apply.Entries = e.log.slice(from, hi+1)
		}
		e.log.applying = hi
		e.log.evict()
	}
	rd.Messages, e.msgs = e.msgs, nil
	rd.AfterPersist, e.afterPersist = e.afterPersist, nil
	rd.Fetches, e.fetches = e.fetches, nil
	rd.ReadStates, e.reads.ready = e.reads.ready, nil
	rd.FailedReads, e.reads.failed = e.reads.failed, nil
	rd.TransferAborted, e.transferAborted = e.transferAborted, false
	rd.ConfigChanged, e.configChanged = e.configChanged, false
	rd.SendSnapshots, e.sendSnapshots = e.sendSnapshots, nil
	rd.SnapshotAcks, e.snapshotAcks = e.snapshotAcks, nil
	rd.SnapshotChunks, e.snapshotChunks = e.snapshotChunks, nil
	return rd
}

// PeerStatus is the leader's view of one peer.
type PeerStatus struct {
	ID    NodeID
	Match uint64
	Next  uint64
	State string
	// TicksSinceContact is how many ticks ago the peer was last heard from.
	TicksSinceContact uint64
	Voter             bool
	// Detail describes the replication flow state, for debugging.
	Detail string
}

// Status is a snapshot of the engine's state for metrics.
type Status struct {
	ID         NodeID
	Role       Role
	Term       uint64
	Vote       NodeID
	Leader     NodeID
	Committed  uint64
	LastIndex  uint64
	Persisted  uint64
	FirstIndex uint64
	Membership Membership
	Peers      []PeerStatus
	Transferee NodeID
}

// Status returns the engine's state.
func (e *Engine) Status() Status {
	s := Status{
		ID: e.id, Role: e.role, Term: e.term, Vote: e.vote, Leader: e.lead,
		Committed: e.log.committed, LastIndex: e.log.last, Persisted: e.log.persisted,
		FirstIndex: e.log.first, Membership: e.membership.Clone(), Transferee: e.transferee,
	}
	if e.role == Leader {
		for _, id := range e.membership.IDs() {
			if id == e.id {
				continue
			}
			if pr := e.prs[id]; pr != nil {
				s.Peers = append(s.Peers, PeerStatus{
					ID: id, Match: pr.match, Next: pr.next, State: pr.state.String(),
					TicksSinceContact: e.now - pr.lastContact, Voter: pr.voter,
					Detail: fmt.Sprintf("inflight=%d/%dB probeSent=%v fetching=%v", len(pr.inflights), pr.inflightBytes, pr.probeSent, pr.fetching),
				})
			}
		}
	}
	return s
}

// TermAt returns the term of the entry at index, if the log knows it.
func (e *Engine) TermAt(index uint64) (uint64, bool) { return e.log.term(index) }

// Applying returns the highest index handed to the apply path.
func (e *Engine) Applying() uint64 { return e.log.applying }
