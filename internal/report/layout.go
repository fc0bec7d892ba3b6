package report

// The artifacts directory Write produces:
//
//	comment.md                 the PR comment (Comment)
//	report.html                single-file HTML report with inline SVG plots
//	fixes/<fix>.md             one experiment note per fix
//	cumulative.md              cumulative-validation report
//	writeup.html, writeup.pdf  platform-lead write-up (PDF when Chromium is there)
//	flame/*.svg                the flame graphs and diffs, copied from the profiles
//	manifest.json              what was written, and what is unavailable and why
const (
	CommentFile    = "comment.md"
	HTMLReport     = "report.html"
	FixNotesDir    = "fixes"
	CumulativeFile = "cumulative.md"
	WriteupHTML    = "writeup.html"
	WriteupPDF     = "writeup.pdf"
	ManifestFile   = "manifest.json"
)
