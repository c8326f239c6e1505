package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"opentracy/backend/traces"
	"opentracy/backend/traces/storetest"
)

// EnvTestAddr names the ClickHouse server the tests use; `make test` starts one and sets it.
const EnvTestAddr = "OPENTRACY_TEST_CLICKHOUSE"

func testAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv(EnvTestAddr)
	if addr == "" {
		tb.Skipf("%s is not set: run `make go-test` (it starts a ClickHouse server), or "+
			"`scripts/clickhouse.sh start build/clickhouse` and %s=127.0.0.1:19000", EnvTestAddr, EnvTestAddr)
	}
	return addr
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// testDatabase is a fresh database name for tb, dropped when tb ends.
func testDatabase(tb testing.TB, addr string) string {
	tb.Helper()
	name := unsafeName.ReplaceAllString(tb.Name(), "_")
	if len(name) > 30 {
		name = name[:30]
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	db := "ot_test_" + name + "_" + hex.EncodeToString(suffix)
	tb.Cleanup(func() {
		// Its own connection: the store is closed by now.
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
		if err != nil {
			tb.Logf("drop %s: %v", db, err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			tb.Logf("drop %s: %v", db, err)
		}
	})
	return db
}

func openTest(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.Addr == "" {
		opts.Addr = testAddr(tb)
	}
	if opts.Database == "" {
		opts.Database = testDatabase(tb, opts.Addr)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	testAddr(t)
	storetest.Run(t, func(t *testing.T) traces.Store { return openTest(t, Options{}) })
}

// Without compression too: the default (LZ4) and none take different paths in the driver.
func TestContractUncompressed(t *testing.T) {
	testAddr(t)
	storetest.Run(t, func(t *testing.T) traces.Store { return openTest(t, Options{Compression: ch.CompressionNone}) })
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	addr := testAddr(t)
	db := testDatabase(t, addr)
	ctx := context.Background()
	for i := range 3 {
		s := openTest(t, Options{Addr: addr, Database: db})
		if i == 0 {
			if err := s.Write(ctx, []*traces.Trace{storetest.Trace(1)}); err != nil {
				t.Fatal(err)
			}
		}
		var version uint32
		if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM `+s.table("schema_migrations")).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if int(version) != len(migrations) {
			t.Errorf("open #%d: schema version %d, want %d", i, version, len(migrations))
		}
		if _, err := s.Get(ctx, storetest.Trace(1).ID); err != nil {
			t.Errorf("open #%d: %v", i, err)
		}
		if i < 2 {
			s.Close()
			continue
		}
		// A database from a newer build is refused rather than misread.
		b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.table("schema_migrations")+` (version, applied_at)`)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(uint32(len(migrations)+1), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if s, err := Open(ctx, Options{Addr: addr, Database: db}); err == nil {
		s.Close()
		t.Error("Open of a newer schema succeeded")
	}
}

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	for _, db := range []string{"a-b", "x`; DROP TABLE y", "1abc", strings.Repeat("a", 65)} {
		if s, err := Open(context.Background(), Options{Addr: "127.0.0.1:1", Database: db}); err == nil {
			s.Close()
			t.Errorf("Open(database %q) succeeded", db)
		}
	}
}

// Get finds a gateway trace (UUIDv7 ID) near the time in its ID, and still finds one whose ID
// time is far from its start time.
func TestGetByUUIDv7(t *testing.T) {
	s := openTest(t, Options{})
	defer s.Close()
	ctx := context.Background()
	near, far := storetest.Trace(1), storetest.Trace(2)
	for _, tr := range []*traces.Trace{near, far} {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		tr.ID = id.String()
	}
	near.StartedAt = time.Now().UTC().Truncate(time.Microsecond)
	if err := s.Write(ctx, []*traces.Trace{near, far}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*traces.Trace{near, far} {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", want.ID, err)
		}
		if !got.StartedAt.Equal(want.StartedAt) {
			t.Errorf("Get(%s) started %v, want %v", want.ID, got.StartedAt, want.StartedAt)
		}
	}
	if ms, ok := uuidV7Millis(near.ID); !ok || time.Since(time.UnixMilli(ms)) > time.Minute {
		t.Errorf("uuidV7Millis(%s) = %d, %v", near.ID, ms, ok)
	}
	if _, ok := uuidV7Millis(uuid.NewString()); ok {
		t.Error("uuidV7Millis accepted a UUIDv4")
	}
	if _, err := s.Get(ctx, uuid.Must(uuid.NewV7()).String()); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get(unknown UUIDv7) = %v, want ErrNotFound", err)
	}
}

// A batch mixing stored and new traces stores the new ones whole: the columns of the rows
// left after dropping the stored ones stay aligned.
func TestWriteSkipsStoredKeepsColumnsAligned(t *testing.T) {
	s := openTest(t, Options{})
	defer s.Close()
	ctx := context.Background()
	var first, second []*traces.Trace
	for i := range 40 {
		tr := storetest.Trace(i)
		tr.Model = fmt.Sprint("model-", i)
		tr.Metadata = map[string]string{"i": fmt.Sprint(i)}
		tr.Usage.PromptTokens = i
		if i%3 == 0 {
			first = append(first, tr)
		}
		second = append(second, tr)
	}
	if err := s.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, second); err != nil {
		t.Fatal(err)
	}
	for _, want := range second {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Get(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
}

// A trace that cannot be encoded is rejected before anything is stored.
func TestUnencodableTraceRejected(t *testing.T) {
	s := openTest(t, Options{})
	defer s.Close()
	bad := storetest.Trace(2)
	bad.Attempts[0].LatencyMillis = math.NaN()
	err := s.Write(context.Background(), []*traces.Trace{storetest.Trace(1), bad})
	if !errors.Is(err, traces.ErrRejected) {
		t.Fatalf("Write = %v, want ErrRejected", err)
	}
	if _, err := s.Get(context.Background(), storetest.Trace(1).ID); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get after rejected batch = %v, want ErrNotFound", err)
	}
}

// Search terms are substrings, whatever characters they hold, and ignore case beyond ASCII.
func TestTextSearchLiteral(t *testing.T) {
	s := openTest(t, Options{})
	defer s.Close()
	ctx := context.Background()
	tr := storetest.Trace(1)
	tr.Input = json.RawMessage(`[{"role":"user","content":"Is 50% of ÉTÉ a_b? it's \"quoted\" \\ here"}]`)
	if err := s.Write(ctx, []*traces.Trace{tr, storetest.Trace(2)}); err != nil {
		t.Fatal(err)
	}
	for _, term := range []string{"50%", "été", "a_b?", "it's", `"quoted"`, `\`, "?"} {
		p, err := s.List(ctx, traces.Query{Text: term})
		if err != nil {
			t.Fatalf("List(%q): %v", term, err)
		}
		if len(p.Traces) != 1 || p.Traces[0].ID != tr.ID {
			t.Errorf("List(%q) = %v, want only %s", term, p.Traces, tr.ID)
		}
	}
}

// proxy forwards TCP connections to target until told to black-hole them (a hung server) or
// closed (a server that is down).
type proxy struct {
	ln     net.Listener
	target string
	hang   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

// pipe copies src to dst, dropping what it reads while hanging.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hang.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A server that goes away or stops answering makes Write fail promptly, so that the Writer keeps
// the batch in its journal and retries, instead of blocking forever.
func TestWriteFailsWhenServerUnavailable(t *testing.T) {
	addr := testAddr(t)
	ctx := context.Background()

	t.Run("down", func(t *testing.T) {
		p := newProxy(t, addr)
		s := openTest(t, Options{Addr: p.addr(), Database: testDatabase(t, addr), DialTimeout: time.Second})
		defer s.Close()
		if err := s.Write(ctx, []*traces.Trace{storetest.Trace(1)}); err != nil {
			t.Fatal(err)
		}
		p.close()
		start := time.Now()
		if err := s.Write(ctx, []*traces.Trace{storetest.Trace(2)}); err == nil {
			t.Error("Write with the server down succeeded")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Write took %v to fail", d)
		}
	})

	t.Run("hung, ctx deadline", func(t *testing.T) {
		p := newProxy(t, addr)
		s := openTest(t, Options{Addr: p.addr(), Database: testDatabase(t, addr)})
		defer s.Close()
		p.hang.Store(true)
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := s.Write(ctx, []*traces.Trace{storetest.Trace(1)}); err == nil {
			t.Error("Write to a hung server succeeded")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Write took %v to give up (ctx deadline 500ms)", d)
		}
	})

	t.Run("hung, read timeout", func(t *testing.T) {
		p := newProxy(t, addr)
		s := openTest(t, Options{Addr: p.addr(), Database: testDatabase(t, addr), ReadTimeout: 500 * time.Millisecond})
		defer s.Close()
		p.hang.Store(true)
		start := time.Now()
		if err := s.Write(ctx, []*traces.Trace{storetest.Trace(1)}); err == nil {
			t.Error("Write to a hung server succeeded")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Write took %v to give up (read timeout 500ms)", d)
		}
	})
}

func TestSearchText(t *testing.T) {
	// Server-free: the contract covers search end to end.
	prev, got := previewAndSearch([]byte(`[{"role":"user","content":[{"type":"text","text":"Hello THERE"}]}]`),
		[]byte(`[{"message":{"role":"assistant","content":"General KENOBI"}}]`))
	if prev != "Hello THERE" || got != "hello there\ngeneral kenobi" {
		t.Errorf("preview %q, search text %q", prev, got)
	}
	if _, got := previewAndSearch([]byte(`NOT json`), []byte("\"Out\xff\"")); got != "not json\nout\ufffd" {
		t.Errorf("non-JSON input: text %q", got)
	}
	if _, got := previewAndSearch(nil, []byte(`[{"message":{"content":"Only output"}}]`)); got != "only output" {
		t.Errorf("output only: text %q", got)
	}
}
