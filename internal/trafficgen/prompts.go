package trafficgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"raterd/record"
)

// kind is the family of a prompt; it decides the app, the templates and the answer shape.
type kind int

const (
	kindFAQ kind = iota
	kindSupport
	kindBilling
	kindCode
	kindSQL
	kindSummarize
	kindExtract
	kindEmail
	kindDocs
)

// tailKinds weights the families of the long-tail prompts.
var tailKinds = []weighted[kind]{
	{kindSupport, 22}, {kindBilling, 12}, {kindCode, 16}, {kindSQL, 10},
	{kindSummarize, 14}, {kindExtract, 12}, {kindEmail, 8}, {kindDocs, 6},
}

// appModels is the traffic split of each app over the deployed models.
var appModels = map[string][]weighted[string]{
	"helpdesk":     {{"support-llm-v7", 75}, {"support-llm-v8-canary", 20}, {"gpt-4o-mini", 5}},
	"billing":      {{"support-llm-v7", 60}, {"support-llm-v8-canary", 15}, {"gpt-4o-mini", 25}},
	"ide-plugin":   {{"code-assist-2", 85}, {"gpt-4o-mini", 15}},
	"docs-search":  {{"summarizer-xl", 40}, {"gpt-4o-mini", 60}},
	"email-drafts": {{"summarizer-xl", 30}, {"gpt-4o-mini", 70}},
}

var (
	supportSystems = []string{
		"You are Brightwave's customer support assistant. Be concise and friendly. Never ask for or reveal full payment card numbers or other customers' personal data.",
		"You are a helpful support agent for Brightwave, an online store for home and office products. Answer in the customer's language and keep answers short.",
	}
	billingSystem   = "You are the billing assistant for Brightwave's workspace product. Explain charges clearly and never disclose payment details."
	codeSystem      = "You are a senior software engineer embedded in the user's IDE. Answer with code first, then a short explanation."
	sqlSystem       = "You are a SQL assistant. Answer with a single query in the requested dialect, then one or two sentences of explanation."
	summarizeSystem = "You summarize documents for busy readers. Be faithful to the source and use plain language."
	extractSystem   = "You are an information-extraction service. Reply with exactly one JSON object that matches the requested schema and nothing else."
	emailSystem     = "You help Brightwave employees write clear, professional emails. Return the email only, starting with the subject line."
	docsSystem      = "You answer questions about infrastructure configuration using the official documentation. State defaults precisely."
)

var (
	greetings      = []string{"Hi, ", "Hello! ", "Hey there. ", "Good morning, "}
	supportExtras  = []string{"Thanks in advance.", "This is really frustrating.", "I need this sorted before the weekend.", "Please help!", "I've already tried contacting you twice."}
	warmupTurns    = []record.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hi! How can I help you today?"}}
	meetingTasks   = []string{"send the revised budget to finance", "book the venue for the offsite", "update the rollout checklist", "follow up with the vendor on pricing", "write the migration runbook", "schedule the customer interviews"}
	meetingTopics  = []string{"the Q1 hiring plan", "moving the launch date", "the new on-call policy", "vendor consolidation", "the pricing page redesign"}
	ticketProblems = map[string][]string{
		"refund":       {"I'd like a refund because it's not what I expected.", "Please refund me, I changed my mind."},
		"shipping":     {"It still hasn't arrived and the tracking hasn't moved in a week.", "The parcel was sent to my old address."},
		"damaged_item": {"It arrived with a cracked screen.", "Half of the parts were broken when I opened the box."},
		"account":      {"I can't log into my account to check the order status.", "My account page shows an error whenever I open the order."},
	}
	ticketCategories = []string{"refund", "shipping", "damaged_item", "account"}
	ticketUrgency    = map[string][]string{
		"high":   {"I need this sorted today, it's a gift for tomorrow.", "This is urgent!!"},
		"medium": {"I'd appreciate a reply this week."},
		"low":    {"No rush, whenever you get a chance."},
	}
	urgencies = []string{"high", "medium", "low"}
)

// promptSpec is one distinct prompt and everything needed to answer it.
type promptSpec struct {
	kind     kind
	app      string
	template string // metadata prompt_template
	locale   string // "" for English
	prompt   string
	messages []record.Message

	core           string // the substance of a good answer; for JSON prompts a compact object
	opener, closer string // the canonical framing of the core
	openers        []string
	closers        []string
	isJSON         bool
	longFamily     string // key of longSections; "" where a long answer makes no sense
	reference      string
}

// text returns the prompt as record.Record.PromptText renders it.
func (p *promptSpec) text() string {
	r := record.Record{Prompt: p.prompt, Messages: p.messages}
	return r.PromptText()
}

// chat turns the prompt into a chat transcript with a system message.
func (p *promptSpec) chat(r *rand.Rand, system string) {
	msgs := []record.Message{{Role: "system", Content: system}}
	if r.IntN(4) == 0 {
		msgs = append(msgs, warmupTurns...)
	}
	p.messages = append(msgs, record.Message{Role: "user", Content: p.prompt})
	p.prompt = ""
	p.template += ".chat"
}

// framing sets the openers and closers a good answer may use and picks the canonical one.
func (p *promptSpec) framing(r *rand.Rand, openers, closers []string) {
	p.openers, p.closers = openers, closers
	p.opener, p.closer = pick(r, openers), pick(r, closers)
}

var (
	none = []string{""}
)

type weighted[T any] struct {
	v T
	w float64
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func pickW[T any](r *rand.Rand, xs []weighted[T]) T {
	total := 0.0
	for _, x := range xs {
		total += x.w
	}
	f := r.Float64() * total
	for _, x := range xs {
		if f < x.w {
			return x.v
		}
		f -= x.w
	}
	return xs[len(xs)-1].v
}

// slots is a list of "{key}", value pairs for strings.NewReplacer; set overrides.
type slots []string

func (s *slots) set(key, value string) {
	k := "{" + key + "}"
	for i := 0; i < len(*s); i += 2 {
		if (*s)[i] == k {
			(*s)[i+1] = value
			return
		}
	}
	*s = append(*s, k, value)
}

func (s slots) fill(t string) string { return strings.NewReplacer(s...).Replace(t) }

func (s slots) clone() slots { return append(slots(nil), s...) }

var asciiFold = strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ñ", "n", "ö", "o",
	"ø", "o", "ü", "u", "ł", "l", "ë", "e", "'", "", "ß", "ss")

type person struct{ first, last string }

func newPerson(r *rand.Rand) person { return person{pick(r, firstNames), pick(r, lastNames)} }

func (p person) full() string { return p.first + " " + p.last }

func (p person) email(r *rand.Rand) string {
	local := asciiFold.Replace(strings.ToLower(p.first))
	switch r.IntN(3) {
	case 0:
		local += "." + asciiFold.Replace(strings.ToLower(p.last))
	case 1:
		local = local[:1] + asciiFold.Replace(strings.ToLower(p.last))
	default:
		local += fmt.Sprintf("%d", 70+r.IntN(30))
	}
	return local + "@" + pick(r, emailDomains)
}

func phone(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("+1 415 555 01%02d", r.IntN(100))
	case 1:
		return fmt.Sprintf("(212) 555-01%02d", r.IntN(100))
	case 2:
		return fmt.Sprintf("+44 20 7946 0%03d", r.IntN(1000))
	default:
		return fmt.Sprintf("+1-312-555-01%02d", r.IntN(100))
	}
}

func orderID(r *rand.Rand) string   { return fmt.Sprintf("BW-%07d", r.IntN(10_000_000)) }
func invoiceID(r *rand.Rand) string { return fmt.Sprintf("INV-2026-%05d", r.IntN(100_000)) }

func money(cents int) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

// novemberDay returns a day of November 2026 and a casual rendering of it.
func novemberDay(r *rand.Rand) (time.Time, string) {
	d := time.Date(2026, 11, 1+r.IntN(27), 0, 0, 0, 0, time.UTC)
	forms := []string{"January 2", "2 Jan", "2006-01-02", "Jan 2"}
	return d, d.Format(pick(r, forms))
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(err) // only plain strings, numbers, slices and structs are encoded here
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func indentJSON(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		return s
	}
	return b.String()
}

// buildFAQ builds one of the short generic head prompts.
func buildFAQ(r *rand.Rand, f faq) *promptSpec {
	p := &promptSpec{kind: kindFAQ, app: f.app, template: f.template, prompt: f.question, core: f.answer}
	switch {
	case f.code:
		p.longFamily = "code"
		p.framing(r, openers, closers)
	case f.app == "email-drafts", f.template == "helpdesk.faq.greeting":
		p.framing(r, none, none)
	case f.app == "docs-search":
		p.longFamily = "docs"
		p.framing(r, openers, closers)
	default:
		p.longFamily = "support"
		p.framing(r, supportOpeners, supportClosers)
	}
	if r.IntN(2) == 0 {
		p.reference = f.answer
	}
	return p
}

// buildTail builds a specific, long-tail prompt.
func buildTail(r *rand.Rand) *promptSpec {
	var p *promptSpec
	switch pickW(r, tailKinds) {
	case kindSupport:
		p = buildSupport(r)
	case kindBilling:
		p = buildBilling(r)
	case kindCode:
		p = buildCode(r)
	case kindSQL:
		p = buildSQL(r)
	case kindSummarize:
		p = buildSummarize(r)
	case kindExtract:
		p = buildExtract(r)
	case kindEmail:
		p = buildEmail(r)
	default:
		p = buildDocs(r)
	}
	if r.Float64() < 0.25 {
		p.reference = p.core
	}
	return p
}

func buildSupport(r *rand.Rand) *promptSpec {
	cust := newPerson(r)
	_, date := novemberDay(r)
	var s slots
	s.set("product", pick(r, products))
	s.set("order", orderID(r))
	s.set("date", date)
	s.set("days", fmt.Sprint(2+r.IntN(12)))
	s.set("code", pick(r, promoCodes))
	s.set("carrier", pick(r, carriers))
	s.set("first", cust.first)
	if r.Float64() < 0.08 {
		l := pick(r, localizedSupport)
		p := &promptSpec{kind: kindSupport, app: "helpdesk", template: "helpdesk.localized." + l[2], locale: l[2],
			prompt: s.fill(l[0]), core: s.fill(l[1]), longFamily: ""}
		p.framing(r, none, none)
		return p
	}
	c := pick(r, supportCases)
	qt := pick(r, c.questions)
	as := s.clone()
	if !strings.Contains(qt, "{order}") {
		as.set("order", "your order")
	}
	if !strings.Contains(qt, "{product}") {
		as.set("product", "item")
	}
	q := s.fill(qt)
	if r.IntN(3) == 0 {
		q = pick(r, greetings) + q
	}
	if r.IntN(3) == 0 {
		q += " " + pick(r, supportExtras)
	}
	if r.IntN(4) == 0 {
		q += "\n\n— " + cust.first
	}
	p := &promptSpec{kind: kindSupport, app: "helpdesk", template: "helpdesk." + c.key + ".v3", prompt: q,
		core: as.fill(c.answer), longFamily: "support"}
	p.framing(r, supportOpeners, supportClosers)
	if r.Float64() < 0.4 {
		p.chat(r, pick(r, supportSystems))
	}
	return p
}

// billingQuestion fills the slots of a billing case for plan pl with seats seats on date,
// and draws the case and its question (with a greeting one time in four): what a billing
// prompt and a billing conversation open with.
func billingQuestion(r *rand.Rand, pl plan, seats int, date string) (slots, billingCase, string) {
	var s slots
	s.set("plan", pl.name)
	s.set("amount", money(pl.monthlyCents*seats))
	s.set("date", date)
	s.set("monthly", money(pl.monthlyCents))
	s.set("annual", money(pl.monthlyCents*10))
	s.set("saving", money(pl.monthlyCents*2))
	s.set("invoice", invoiceID(r))
	s.set("country", pick(r, countries))
	c := pick(r, billingCases)
	q := s.fill(pick(r, c.questions))
	if r.IntN(4) == 0 {
		q = pick(r, greetings) + q
	}
	return s, c, q
}

func buildBilling(r *rand.Rand) *promptSpec {
	pl := pick(r, plans)
	seats := 1 + r.IntN(12)
	_, date := novemberDay(r)
	s, c, q := billingQuestion(r, pl, seats, date)
	p := &promptSpec{kind: kindBilling, app: "billing", template: "billing." + c.key + ".v2", prompt: q,
		core: s.fill(c.answer), longFamily: "support"}
	p.framing(r, supportOpeners, supportClosers)
	if r.Float64() < 0.35 {
		p.chat(r, billingSystem)
	}
	return p
}

func buildCode(r *rand.Rand) *promptSpec {
	p := &promptSpec{kind: kindCode, app: "ide-plugin", longFamily: "code"}
	if r.Float64() < 0.7 {
		t := pick(r, codeTasks)
		var s slots
		s.set("lang", t.lang)
		s.set("task", t.task)
		p.prompt = s.fill(pick(r, codeQuestionForms) + pick(r, codeContexts))
		p.core = fence + t.fenceLang + "\n" + t.code + "\n" + fence + "\n\n" + t.explain
		p.template = "ide.codegen.v2"
	} else {
		d := pick(r, debugCases)
		var s slots
		s.set("lang", d.lang)
		s.set("err", d.errText)
		s.set("fl", d.fenceLang)
		s.set("code", d.code)
		p.prompt = s.fill(pick(r, debugQuestionForms))
		if r.IntN(3) == 0 {
			p.prompt += pick(r, []string{"\n\nThanks!", "\n\nI'm stuck on this for an hour.", "\n\n(running it locally, latest version)"})
		}
		p.core = d.answer
		p.template = "ide.debug.v1"
	}
	p.framing(r, openers, closers)
	if r.Float64() < 0.2 {
		p.chat(r, codeSystem)
	}
	return p
}

func buildSQL(r *rand.Rand) *promptSpec {
	sh := pick(r, sqlShapes)
	d := pick(r, sqlDialects)
	for sh.needsP95 && d.p95 == "" {
		d = pick(r, sqlDialects)
	}
	days := pick(r, []int{7, 14, 30, 90})
	var s slots
	s.set("dialect", d.name)
	s.set("n", fmt.Sprint(pick(r, []int{5, 10, 20, 25})))
	s.set("days", fmt.Sprint(days))
	s.set("since", fmt.Sprintf(d.since, days))
	s.set("day", d.day)
	s.set("hours", d.hours)
	s.set("p95", d.p95)
	app := "ide-plugin"
	if r.IntN(5) < 2 {
		app = "docs-search"
	}
	p := &promptSpec{kind: kindSQL, app: app, template: "sql." + sh.key + ".v1", prompt: s.fill(pick(r, sh.questions)),
		core: fence + "sql\n" + s.fill(sh.query) + "\n" + fence + "\n\n" + sh.explain, longFamily: "code"}
	p.framing(r, openers, closers)
	if r.Float64() < 0.2 {
		p.chat(r, sqlSystem+" Dialect: "+d.name+".")
	}
	return p
}

// docSlots fills the slots of the documents to summarise.
func docSlots(r *rand.Rand) slots {
	_, date := novemberDay(r)
	var s slots
	s.set("date", date)
	s.set("service", pick(r, services))
	s.set("region", pick(r, regionsText))
	s.set("dur", fmt.Sprint(15+r.IntN(80)))
	s.set("pct", fmt.Sprint(3+r.IntN(37)))
	s.set("n", fmt.Sprint(1000+r.IntN(49000)))
	s.set("m", fmt.Sprint(50+r.IntN(850)))
	s.set("k", fmt.Sprint(10+r.IntN(290)))
	s.set("q", fmt.Sprintf("Q%d", 1+r.IntN(4)))
	s.set("arr", fmt.Sprintf("%d.%d", 5+r.IntN(60), r.IntN(10)))
	s.set("churn", fmt.Sprintf("%d.%d", 1+r.IntN(4), r.IntN(10)))
	s.set("deals", fmt.Sprint(3+r.IntN(17)))
	hires := 4 + r.IntN(16)
	s.set("hires", fmt.Sprint(hires))
	s.set("target", fmt.Sprint(hires+3+r.IntN(10)))
	s.set("csat", fmt.Sprint(82+r.IntN(13)))
	s.set("project", pick(r, projects))
	a, b, c := newPerson(r), newPerson(r), newPerson(r)
	s.set("attendees", a.full()+", "+b.full()+" and "+c.full())
	s.set("p1", a.first)
	s.set("p2", b.first)
	s.set("version", fmt.Sprintf("%d.%d", 3+r.IntN(3), r.IntN(20)))
	s.set("product", pick(r, products))
	s.set("agree", fmt.Sprint(74+r.IntN(12)))
	s.set("iaa", fmt.Sprint(78+r.IntN(10)))
	return s
}

// paragraph picks the first sentence of a bank and a random, ordered subset of the rest.
func paragraph(r *rand.Rand, bank docBank, keep float64) []sentence {
	out := []sentence{bank.sentences[0]}
	for _, st := range bank.sentences[1:] {
		if r.Float64() < keep {
			out = append(out, st)
		}
	}
	return out
}

func buildSummarize(r *rand.Rand) *promptSpec {
	s := docSlots(r)
	var paras [][]sentence
	doc := ""
	if r.Float64() < 0.35 {
		// A longer pasted document: several paragraphs from different banks.
		order := r.Perm(len(docBanks))
		n := 2 + r.IntN(len(docBanks)-1)
		for _, i := range order[:n] {
			paras = append(paras, paragraph(r, docBanks[i], 0.85))
		}
		doc = pick(r, []string{"document", "set of notes", "internal update"})
	} else {
		bank := pick(r, docBanks)
		paras = append(paras, paragraph(r, bank, 0.55))
		doc = bank.name
	}
	var text []string
	var bullets []string
	for _, para := range paras {
		var ss []string
		for i, st := range para {
			ss = append(ss, st.full)
			if i == 0 || r.Float64() < 0.7 {
				bullets = append(bullets, s.fill(st.bullet))
			}
		}
		text = append(text, s.fill(strings.Join(ss, " ")))
	}
	nb := min(len(bullets), 3+r.IntN(3))
	s.set("doc", doc)
	s.set("text", strings.Join(text, "\n\n"))
	s.set("nb", fmt.Sprint(nb))
	s.set("audience", pick(r, audiences))
	p := &promptSpec{kind: kindSummarize, longFamily: "prose"}
	p.app = pick(r, []string{"docs-search", "email-drafts"})
	if r.Float64() < 0.25 {
		p.prompt = s.fill(pick(r, summarizeProseForms))
		p.core = strings.Join(bullets[:min(len(bullets), 3)], " ")
		p.template = "summarize.prose.v1"
	} else {
		p.prompt = s.fill(pick(r, summarizeForms))
		p.core = "- " + strings.Join(bullets[:nb], "\n- ")
		p.template = "summarize.bullets.v2"
	}
	p.framing(r, []string{"", "", "Here's a summary:\n\n", "Summary:\n\n"}, []string{"", ""})
	if r.Float64() < 0.1 {
		p.chat(r, summarizeSystem)
	}
	return p
}

type ticketFields struct {
	Name     string `json:"name"`
	OrderID  string `json:"order_id"`
	Category string `json:"category"`
	Urgency  string `json:"urgency"`
}

type invoiceFields struct {
	Vendor        string      `json:"vendor"`
	InvoiceNumber string      `json:"invoice_number"`
	IssueDate     string      `json:"issue_date"`
	DueDate       string      `json:"due_date"`
	Total         json.Number `json:"total"`
	Currency      string      `json:"currency"`
}

type actionItem struct {
	Owner string `json:"owner"`
	Task  string `json:"task"`
}

type meetingFields struct {
	Date        string       `json:"date"`
	Attendees   []string     `json:"attendees"`
	ActionItems []actionItem `json:"action_items"`
}

func buildExtract(r *rand.Rand) *promptSpec {
	p := &promptSpec{kind: kindExtract, isJSON: true}
	switch r.IntN(3) {
	case 0:
		cust := newPerson(r)
		_, date := novemberDay(r)
		f := ticketFields{Name: cust.full(), OrderID: orderID(r), Category: pick(r, ticketCategories), Urgency: pick(r, urgencies)}
		intro := pick(r, []string{"Hi, my name is " + f.Name + ".", "Hello support, " + f.Name + " here."})
		msg := fmt.Sprintf("%s I placed order %s on %s for a %s. %s %s Thanks, %s", intro, f.OrderID, date,
			pick(r, products), pick(r, ticketProblems[f.Category]), pick(r, ticketUrgency[f.Urgency]), cust.first)
		p.app, p.template, p.core = "helpdesk", "extract.ticket.v2", marshal(f)
		p.prompt = "Extract the following fields from the customer message below and respond in JSON only (no markdown, no explanation): name, order_id, category (one of refund, shipping, damaged_item, account), urgency (low, medium or high).\n\nMessage:\n" + msg
	case 1:
		issue, _ := novemberDay(r)
		due := issue.AddDate(0, 0, 30)
		cur := pick(r, []string{"EUR", "USD", "GBP"})
		var lines []string
		sub := 0
		for _, i := range r.Perm(len(lineItems))[:1+r.IntN(4)] {
			qty := 1 + r.IntN(10)
			amt := qty * (2000 + r.IntN(60000))
			sub += amt
			lines = append(lines, fmt.Sprintf("%s | %d | %d.%02d", lineItems[i], qty, amt/100, amt%100))
		}
		vat := pick(r, []int{0, 19, 20, 21})
		tax := sub * vat / 100
		total := sub + tax
		f := invoiceFields{Vendor: pick(r, vendors), InvoiceNumber: invoiceID(r), IssueDate: issue.Format(time.DateOnly),
			DueDate: due.Format(time.DateOnly), Total: json.Number(fmt.Sprintf("%d.%02d", total/100, total%100)), Currency: cur}
		dateForm := pick(r, []string{"02.01.2006", "January 2, 2006", "2 Jan 2006"})
		text := fmt.Sprintf("INVOICE\n%s\n%s\n\nInvoice no.: %s\nIssue date: %s\nDue date: %s\nBill to: Brightwave Inc., Accounts Payable\n\nDescription | Qty | Amount\n%s\n\nSubtotal: %d.%02d\nVAT (%d%%): %d.%02d\nTotal due: %s %s\nPayment terms: net 30",
			f.Vendor, pick(r, streets), f.InvoiceNumber, issue.Format(dateForm), due.Format(dateForm), strings.Join(lines, "\n"),
			sub/100, sub%100, vat, tax/100, tax%100, f.Total, cur)
		p.app, p.template, p.core = "billing", "extract.invoice.v1", marshal(f)
		p.prompt = "Return a JSON object with the keys vendor, invoice_number, issue_date (YYYY-MM-DD), due_date (YYYY-MM-DD), total (number) and currency (ISO 4217) for this invoice. Respond in JSON only.\n\n" + text
	default:
		day, date := novemberDay(r)
		ppl := []person{newPerson(r), newPerson(r), newPerson(r)}
		f := meetingFields{Date: day.Format(time.DateOnly)}
		for _, x := range ppl {
			f.Attendees = append(f.Attendees, x.full())
		}
		tasks := r.Perm(len(meetingTasks))
		f.ActionItems = []actionItem{{ppl[0].first, meetingTasks[tasks[0]]}, {ppl[1].first, meetingTasks[tasks[1]]}}
		text := fmt.Sprintf("Notes from the %s sync, %s\nPresent: %s\n\n- %s to %s by Friday.\n- Discussed %s; no decision yet.\n- %s will %s.",
			pick(r, projects), date, strings.Join(f.Attendees, ", "), ppl[0].first, f.ActionItems[0].Task,
			pick(r, meetingTopics), ppl[1].first, f.ActionItems[1].Task)
		p.app, p.template, p.core = "email-drafts", "extract.meeting.v1", marshal(f)
		p.prompt = "Extract the meeting date (YYYY-MM-DD), the attendees and the action items (owner and task) from these notes. Answer with a JSON object with keys date, attendees, action_items — JSON only.\n\n" + text
	}
	p.framing(r, none, none)
	if r.Float64() < 0.3 {
		p.chat(r, extractSystem)
	}
	return p
}

func buildEmail(r *rand.Rand) *promptSpec {
	e := pick(r, emailPurposes)
	sender, mgr := newPerson(r), newPerson(r)
	var s slots
	s.set("rname", pick(r, firstNames))
	s.set("sender", sender.full())
	s.set("manager", mgr.full())
	s.set("invoice", invoiceID(r))
	s.set("order", orderID(r))
	s.set("days", fmt.Sprint(3+r.IntN(40)))
	s.set("service", pick(r, proposalServices))
	s.set("system", pick(r, dashboards))
	s.set("reason", pick(r, accessReasons))
	s.set("tone", pick(r, emailTones))
	s.set("words", fmt.Sprint(pick(r, []int{80, 120, 150, 200})))
	s.set("recipient", e.recipient)
	s.set("purpose", s.fill(e.purpose))
	p := &promptSpec{kind: kindEmail, app: "email-drafts", template: "email.draft." + e.key, prompt: s.fill(pick(r, emailForms)),
		core: s.fill(e.draft), longFamily: "prose"}
	p.framing(r, none, none)
	if r.Float64() < 0.25 {
		p.chat(r, emailSystem)
	}
	return p
}

func buildDocs(r *rand.Rand) *promptSpec {
	o := pick(r, docOptions)
	var s slots
	s.set("opt", o.opt)
	s.set("system", o.system)
	s.set("symptom", o.symptom)
	p := &promptSpec{kind: kindDocs, app: "docs-search", template: "docs.config_qa.v1", prompt: s.fill(pick(r, docQuestionForms)),
		core: o.answer, longFamily: "docs"}
	p.framing(r, openers, closers)
	if r.Float64() < 0.15 {
		p.chat(r, docsSystem)
	}
	return p
}
