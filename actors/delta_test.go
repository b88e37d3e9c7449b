package actors_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rebuild builds actors/testdata/rebuilt with its main.go's text changed
// by the replacements (old, new, old, new...) and returns the binary.
func rebuild(t *testing.T, dir string, name string, replace ...string) string {
	t.Helper()
	src, err := os.ReadFile("testdata/rebuilt/main.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("testdata/rebuilt/main.go has no %q", replace[i])
		}
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	mainGo := filepath.Join(dir, name+".go")
	os.WriteFile(mainGo, []byte(text), 0o644)
	abs, _ := filepath.Abs("testdata/rebuilt/main.go")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{abs: mainGo}})
	overlayFile := filepath.Join(dir, name+".json")
	os.WriteFile(overlayFile, overlay, 0o644)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build test programs: %v", err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(goTool, "build", "-overlay", overlayFile, "-o", out, "./testdata/rebuilt")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, msg)
	}
	return out
}

// upload is what a run of a rebuilt program sent for its context.
type upload struct {
	sent  int64
	delta string
}

// runRebuilt runs the program at path as a master that reaches user
// through sudo, and returns what it printed and what it uploaded.
func runRebuilt(t *testing.T, path, cacheHome, user string) (string, *upload) {
	t.Helper()
	cmd := exec.Command(path, user)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(path), err, stderr.String())
	}
	var up *upload
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var rec struct {
			Msg   string `json:"msg"`
			Bytes int64  `json:"bytes"`
			Delta string `json:"delta_from"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "binary uploaded" {
			up = &upload{sent: rec.Bytes, delta: rec.Delta}
		}
	}
	return strings.TrimSpace(string(out)), up
}

// After a rebuild, a program's first contact with an account that holds
// the earlier build sends a delta, which the earlier build applies there:
// for a changed string or function body it is at most a quarter of the
// whole upload (in practice a few percent), and the new code runs. Sizes
// for a few kinds of change are logged.
func TestSudoDeltaAfterRebuild(t *testing.T) {
	u := needSudo(t)
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	os.RemoveAll(u.HomeDir + "/.cache/mitogo")
	dir := t.TempDir()
	cacheHome := t.TempDir() // the master's cache, where it keeps what it sent
	const orig = `return "one", nil`
	v1 := rebuild(t, dir, "v1")
	got, full := runRebuilt(t, v1, cacheHome, "mitogo-test")
	if got != "one" || full == nil || full.delta != "" {
		t.Fatalf("first build: printed %q, upload %+v; want one, a whole upload", got, full)
	}
	t.Logf("whole upload: %d bytes", full.sent)
	for _, c := range []struct {
		name, want string
		replace    []string
		bound      bool // the delta must be at most a quarter of the whole upload
	}{
		{"string", "two", []string{orig, `return "two", nil`}, true},
		{"function body", "ONE", []string{orig, `return strings.ToUpper("one"), nil`, `"os"`, `"os"` + "\n\t\"strings\""}, true},
		{"new dependency", "<x>one</x>", []string{orig, `b, err := xml.Marshal(struct{ XMLName xml.Name ` + "`xml:\"x\"`" + `; V string ` + "`xml:\",chardata\"`" + ` }{V: "one"}); return string(b), err`, `"os"`, `"os"` + "\n\t\"encoding/xml\""}, false},
	} {
		// Each change is a rebuild of the first: the far side holds v1
		// and the builds tried before, the master all it sent.
		bin := rebuild(t, dir, strings.ReplaceAll(c.name, " ", "-"), c.replace...)
		got, up := runRebuilt(t, bin, cacheHome, "mitogo-test")
		if got != c.want || up == nil || up.delta == "" {
			t.Fatalf("%s: printed %q, upload %+v; want %q from a delta", c.name, got, up, c.want)
		}
		t.Logf("%s: delta of %d bytes (%.1f%% of the whole upload)", c.name, up.sent, 100*float64(up.sent)/float64(full.sent))
		if c.bound && up.sent > full.sent/4 {
			t.Errorf("%s: delta of %d bytes, more than a quarter of the whole upload (%d)", c.name, up.sent, full.sent)
		}
		if got, up := runRebuilt(t, bin, cacheHome, "mitogo-test"); got != c.want || up != nil {
			t.Errorf("%s again: printed %q, upload %+v; want no upload", c.name, got, up)
		}
	}
}
