package bench

import (
	"testing"

	"raterd/internal/judgesim"
)

// The ready line is found however the child's output is split, after other lines.
func TestReadyWriterFindsTheReadyLine(t *testing.T) {
	out := "judgesim: starting\n" + `{"endpoints":["http://127.0.0.1:1","http://127.0.0.1:2"]}` + "\nmore\n"
	for _, chunk := range []int{1, 3, 7, len(out)} {
		ready := make(chan judgesim.Ready, 1)
		w := &readyWriter{ready: ready}
		for i := 0; i < len(out); i += chunk {
			if _, err := w.Write([]byte(out[i:min(i+chunk, len(out))])); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case r := <-ready:
			if len(r.Endpoints) != 2 || r.Endpoints[1] != "http://127.0.0.1:2" {
				t.Fatalf("chunks of %d: %+v", chunk, r)
			}
		default:
			t.Fatalf("chunks of %d: no ready line", chunk)
		}
	}
}

// FuzzReadyWriter: any output, in any split, never panics and yields at most one ready
// line, which has endpoints.
func FuzzReadyWriter(f *testing.F) {
	f.Add([]byte(`{"endpoints":["http://127.0.0.1:1"]}`+"\n"), 5)
	f.Add([]byte("x\n{\n{\"endpoints\":[]}\n"), 1)
	f.Fuzz(func(t *testing.T, out []byte, chunk int) {
		chunk = max(1, chunk%64)
		ready := make(chan judgesim.Ready, 1)
		w := &readyWriter{ready: ready}
		for i := 0; i < len(out); i += chunk {
			n, err := w.Write(out[i:min(i+chunk, len(out))])
			if err != nil || n != min(chunk, len(out)-i) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		select {
		case r := <-ready:
			if len(r.Endpoints) == 0 {
				t.Fatal("a ready line without endpoints")
			}
		default:
		}
	})
}
