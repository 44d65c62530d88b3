// go2junit reads `go test -json` on stdin, echoes the tests' output to
// stderr as it arrives (so the log reads like `go test -v`), and writes a
// JUnit XML report to the file named by -o. Standard library only, so the
// suite needs no extra module.
package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type testCase struct {
	XMLName   xml.Name `xml:"testcase"`
	Classname string   `xml:"classname,attr"`
	Name      string   `xml:"name,attr"`
	Time      string   `xml:"time,attr"`
	Failure   *message `xml:"failure,omitempty"`
	Skipped   *message `xml:"skipped,omitempty"`
	SystemOut string   `xml:"system-out,omitempty"`
}

type message struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

type suite struct {
	XMLName   xml.Name   `xml:"testsuite"`
	Name      string     `xml:"name,attr"`
	Tests     int        `xml:"tests,attr"`
	Failures  int        `xml:"failures,attr"`
	Skipped   int        `xml:"skipped,attr"`
	Time      string     `xml:"time,attr"`
	Timestamp string     `xml:"timestamp,attr"`
	Cases     []testCase `xml:"testcase"`
	SystemErr string     `xml:"system-err,omitempty"`
}

type suites struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []*suite `xml:"testsuite"`
}

func main() {
	out := flag.String("o", "", "JUnit XML file to write")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "go2junit: -o FILE is required")
		os.Exit(2)
	}
	start := time.Now().UTC().Format(time.RFC3339)
	type state struct {
		output strings.Builder
		result string
		secs   float64
	}
	pkgs := map[string]*suite{}
	pkgOut := map[string]*strings.Builder{}
	pkgResult := map[string]string{}
	tests := map[string]*state{}
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(os.Stderr, sc.Text()) // build errors etc. are not JSON
			continue
		}
		if e.Output != "" {
			fmt.Fprint(os.Stderr, e.Output)
		}
		if pkgs[e.Package] == nil {
			pkgs[e.Package] = &suite{Name: e.Package, Timestamp: start}
			pkgOut[e.Package] = &strings.Builder{}
		}
		if e.Test == "" {
			pkgOut[e.Package].WriteString(e.Output)
			if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
				pkgs[e.Package].Time = fmt.Sprintf("%.3f", e.Elapsed)
				pkgResult[e.Package] = e.Action
			}
			continue
		}
		key := e.Package + "\x00" + e.Test
		st := tests[key]
		if st == nil {
			st = &state{}
			tests[key] = st
			order = append(order, key)
		}
		switch e.Action {
		case "output":
			st.output.WriteString(e.Output)
		case "pass", "fail", "skip":
			st.result, st.secs = e.Action, e.Elapsed
		}
	}
	for _, key := range order {
		pkg, name, _ := strings.Cut(key, "\x00")
		st, s := tests[key], pkgs[pkg]
		tc := testCase{Classname: pkg, Name: name, Time: fmt.Sprintf("%.3f", st.secs), SystemOut: st.output.String()}
		switch st.result {
		case "fail":
			tc.Failure = &message{Message: "failed", Body: st.output.String()}
			s.Failures++
		case "skip":
			tc.Skipped = &message{Message: "skipped"}
			s.Skipped++
		case "pass":
		default: // no result: the run was killed (timeout) or panicked
			tc.Failure = &message{Message: "no result (timeout or panic)", Body: st.output.String()}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	var all suites
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if pkgResult[n] == "skip" {
			continue // [no test files]
		}
		if s := pkgs[n]; pkgResult[n] != "pass" && s.Failures == 0 {
			// the package failed outside any test (TestMain could not start
			// the broker, build error, timeout): report it as a failure
			s.Tests++
			s.Failures++
			s.Cases = append(s.Cases, testCase{Classname: n, Name: "TestMain", Time: s.Time,
				Failure: &message{Message: "package failed: " + pkgResult[n], Body: pkgOut[n].String()}})
		}
		pkgs[n].SystemErr = pkgOut[n].String()
		all.Suites = append(all.Suites, pkgs[n])
	}
	data, err := xml.MarshalIndent(all, "", "  ")
	if err == nil {
		err = os.WriteFile(*out, append([]byte(xml.Header), append(data, '\n')...), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go2junit: %v\n", err)
		os.Exit(1)
	}
}
