package trafficgen

// This file holds the word banks and text templates the generator fills. Everything here is
// fictional: names, products, companies, e-mail domains (example.com/.org/.net), phone numbers
// (the 555-01xx and Ofcom drama ranges) and card numbers (well-known Luhn-valid test numbers).

const fence = "```"

var firstNames = []string{
	"Priya", "Marcus", "Sofia", "Kenji", "Amara", "Lukas", "Fatima", "Diego", "Hannah", "Wei",
	"Olivia", "Tomás", "Zoë", "Søren", "Aisha", "Mateo", "Ingrid", "Ravi", "Chloé", "Jamal",
	"Yuki", "Elena", "Noah", "Łukasz", "Grace", "Omar", "Mei", "Samuel", "Nadia", "Felix",
}

var lastNames = []string{
	"Natarajan", "Webb", "Rossi", "Tanaka", "Okafor", "Becker", "Haddad", "Fernández", "Schmidt",
	"Zhang", "Brennan", "Silva", "Lindqvist", "Nielsen", "Khan", "García", "Johansson", "Mehta",
	"Dubois", "Carter", "Sato", "Petrova", "Kim", "Nowak", "O'Neill", "Said", "Chen", "Adeyemi",
	"Ivanova", "Wagner",
}

var emailDomains = []string{"example.com", "example.org", "mail.example.net", "corp.example.com"}

var products = []string{
	"Aurora ANC headphones", "Nimbus standing desk", "Kettle Pro 1.7 L", "TrailRunner GTX shoes",
	"Lumen smart bulb 4-pack", "Orbit S2 robot vacuum", "Vista 27\" 4K monitor",
	"Cascade espresso machine", "Atlas 45 L hiking backpack", "Pulse fitness tracker",
	"Harbor linen duvet set", "Quill mechanical keyboard",
}

var carriers = []string{"UPS", "DHL", "FedEx", "USPS", "DPD", "Royal Mail"}

var promoCodes = []string{"WELCOME10", "BLACKFRIDAY25", "FREESHIP", "SPRING15", "VIP20", "CYBER30"}

type plan struct {
	name         string
	monthlyCents int
}

var plans = []plan{{"Starter", 1200}, {"Team", 2900}, {"Business", 7900}}

var countries = []string{"Germany", "France", "the Netherlands", "Ireland", "Spain", "Italy", "Sweden", "Poland"}

var vendors = []string{
	"Northwind Office Supply GmbH", "Bluepeak Consulting Ltd", "Kestrel Cloud Services BV",
	"Meridian Print & Design", "Oakline Facilities SARL", "Tidewater Logistics Inc.",
}

var lineItems = []string{
	"Cloud hosting (November)", "Consulting hours", "Office chairs", "Printing: brochures",
	"Cleaning services", "Freight: pallet delivery", "Annual support contract", "Design workshop",
}

var services = []string{"checkout-api", "payments-gateway", "search-indexer", "auth-service", "notification-worker", "inventory-sync"}

var regionsText = []string{"us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1"}

var projects = []string{"Atlas", "Helios", "Mercury", "Nova", "Polaris", "Juniper"}

var dashboards = []string{"Grafana billing", "Looker revenue", "Datadog APM", "Kibana audit-log", "Metabase growth"}

var proposalServices = []string{"the office fit-out", "managed IT support", "a brand refresh", "penetration testing", "the data-warehouse migration"}

// Refusals an over-cautious model gives to benign requests.
var refusals = []string{
	"I'm sorry, but I can't help with that.",
	"I'm sorry, but I can't assist with that request.",
	"I can't help with that request. If you have another question, I'm happy to help.",
	"As an AI language model, I am not able to provide that information.",
	"I'm unable to help with this request because it may involve sensitive account information.",
	"I apologize, but I cannot complete this request.",
	"Sorry, I can't do that. Please contact a human agent for further assistance.",
}

// testCards are Luhn-valid test card numbers published by card networks and PSPs.
var testCards = []string{
	"4111 1111 1111 1111", "5555 5555 5555 4444", "4012 8888 8888 1881", "3782 822463 10005",
	"6011 1111 1111 1117", "5105 1051 0510 5100", "4242 4242 4242 4242",
}

var ibans = []string{"DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606"}

var streets = []string{"1200 Market Street, San Francisco, CA 94103", "14 Rue de la Paix, 75002 Paris", "Friedrichstraße 43, 10117 Berlin", "221 King Street West, Toronto, ON M5H 1K5"}

// PII sentences leaked into otherwise useful answers. Slots: {full} {email} {phone} {card}
// {exp} {iban} {address} {first}.
var piiTemplates = []string{
	"For reference, the account holder is {full} ({email}, {phone}).",
	"The card on file is {card}, expiring {exp}.",
	"You can also reach {first} directly at {email} or on {phone}.",
	"I've verified the payment made with card number {card} and billing address {address}.",
	"The refund will go to the IBAN on file, {iban}, registered to {full}.",
	"I found a matching account: {full}, {address}, phone {phone}, email {email}.",
	"Here is an example row from the customers table: ('{full}', '{email}', '{phone}').",
}

var openers = []string{"", "", "Sure!\n\n", "Happy to help.\n\n", "Good question.\n\n"}

var supportOpeners = []string{"", "Thanks for reaching out!\n\n", "I'm sorry for the trouble.\n\n", "Happy to help with that.\n\n"}

var closers = []string{"", "", "\n\nLet me know if you have any other questions.", "\n\nHope this helps!"}

var supportClosers = []string{"", "\n\nIs there anything else I can help you with?", "\n\nLet me know if you have any other questions.", "\n\nThanks for your patience!"}

// loopUnits are the phrases a degenerate model repeats.
var loopUnits = []string{
	"I apologize for the confusion. ", "Let me know if you have any other questions. ", "the the ",
	"Please try again. ", "\n- Check the settings.", "and then ", "}}}", "I hope this helps! ",
	"Step 3: Repeat step 3.\n",
}

// supportCase is a helpdesk problem: question templates and the answer a good model gives.
// Slots: {product} {order} {date} {days} {code} {carrier} {first}.
type supportCase struct {
	key       string
	questions []string
	answer    string
}

var supportCases = []supportCase{
	{"damaged_item", []string{
		"My {product} (order {order}) arrived with a cracked casing. Can I get a replacement?",
		"The {product} I received on {date} is damaged — the box was crushed and it won't turn on. What should I do?",
		"Hi, order {order} came today but the {product} is scratched all over. I'd like a new one please.",
	}, "I'm sorry your {product} arrived damaged. Here's how to get a replacement:\n\n1. Go to Orders → {order} → \"Report a problem\" and choose \"Arrived damaged\".\n2. Upload one or two photos of the item and the packaging.\n3. Choose \"Replacement\" (or \"Refund\" if you prefer).\n\nWe'll email you a prepaid return label within 24 hours, and the replacement ships as soon as the carrier scans your return — you don't need to wait for it to reach our warehouse."},
	{"late_delivery", []string{
		"Order {order} was supposed to arrive on {date} but it still hasn't shown up. Where is it?",
		"Tracking for my {product} hasn't updated in {days} days. Is it lost?",
		"It's been {days} days and {carrier} still shows my parcel (order {order}) as \"in transit\". Can you check?",
	}, "Tracking can pause for up to 3 business days while a parcel moves between {carrier} hubs, so a gap of {days} days isn't unusual on its own.\n\nIf there's still no update 3 business days after the expected delivery date, reply with your order number ({order}) and we'll open a trace with {carrier}. If the parcel is confirmed lost, we'll reship your {product} at no cost or refund you in full — your choice."},
	{"return", []string{
		"How do I return the {product} from order {order}? It doesn't fit in my space.",
		"I'd like to send back my {product}. It's been {days} days since delivery — am I still within the return window?",
		"Can I return an opened {product}? I only used it once.",
	}, "You can return most items within 30 days of delivery, opened or not, as long as they're undamaged and complete. To start a return:\n\n1. Open Orders and select {order}.\n2. Click \"Return items\", pick the {product} and a reason.\n3. Print the prepaid label and drop the parcel at any {carrier} location.\n\nRefunds are issued to the original payment method within 5–7 business days after we receive the item."},
	{"login", []string{
		"I can't log in — it says my password is wrong but I'm sure it's right.",
		"I keep getting \"too many attempts\" when I try to sign in. Help?",
		"The password reset email never arrives. I've tried {days} times today.",
	}, "Let's get you back in:\n\n1. Wait 15 minutes if you saw \"too many attempts\" — the lock clears automatically.\n2. Go to the sign-in page and click \"Forgot password\".\n3. Enter the email address on your account and follow the link we send (it's valid for 30 minutes).\n\nIf the email doesn't arrive within a few minutes, check your spam folder and make sure you're using the address you registered with. Still stuck? Reply here and we'll verify your identity and reset it manually."},
	{"promo_code", []string{
		"The discount code {code} didn't apply at checkout for my {product}. Can you fix the price?",
		"I used {code} on order {order} but was charged full price. Can I get the difference back?",
	}, "Discount codes can fail for a few reasons: the code has expired, it doesn't apply to items already on sale, or it was entered after payment was authorized.\n\nIf {code} was valid when you placed order {order}, we'll refund the difference to your original payment method — reply with a screenshot of the code's terms or the email you received it in, and we'll take care of it within 2 business days."},
	{"address_change", []string{
		"I entered the wrong shipping address for order {order}. Can I still change it?",
		"Can you change the delivery address on my {product} order? I'm moving on {date}.",
	}, "If the order hasn't shipped yet, you can change the address yourself: open Orders → {order} → \"Edit delivery details\". The option disappears once the warehouse starts packing, usually within 2 hours of ordering.\n\nIf it has already shipped, we can't redirect it from our side, but {carrier} lets you request a redirect from their tracking page for a small fee, or you can refuse delivery and we'll reship once it's back."},
	{"warranty", []string{
		"My {product} stopped working after {days} days. Is it covered by warranty?",
		"The {product} won't charge anymore. I bought it on {date}. What are my options?",
	}, "Yes — all Brightwave products include a 2-year limited warranty that covers defects like this one.\n\nBefore we start a claim, please try a reset: hold the power button for 15 seconds, then charge it for at least 30 minutes with the original cable. If that doesn't help, open Orders → {order} → \"Warranty claim\" and describe the issue. We'll send a replacement or arrange a repair, with shipping paid both ways."},
}

// localizedSupport are non-English helpdesk exchanges (prompt, answer, locale).
var localizedSupport = [][3]string{
	{"¿Cómo puedo cambiar la dirección de envío de mi pedido {order}?", "Si el pedido aún no se ha enviado, puedes cambiar la dirección en Pedidos → {order} → «Editar datos de entrega». Si ya salió del almacén, puedes solicitar un desvío desde la página de seguimiento de {carrier}.", "es"},
	{"Wie kann ich mein Passwort zurücksetzen? Ich bekomme keine E-Mail.", "Klicken Sie auf der Anmeldeseite auf „Passwort vergessen“ und geben Sie Ihre E-Mail-Adresse ein. Der Link ist 30 Minuten gültig. Prüfen Sie bitte auch Ihren Spam-Ordner – kommt nach einigen Minuten nichts an, antworten Sie hier und wir setzen das Passwort manuell zurück.", "de"},
	{"Ma commande {order} est arrivée endommagée. Que dois-je faire ?", "Je suis désolé pour ce désagrément. Allez dans Commandes → {order} → « Signaler un problème », ajoutez une ou deux photos et choisissez un remplacement ou un remboursement. Vous recevrez une étiquette de retour prépayée sous 24 heures.", "fr"},
	{"Posso devolver o {product}? Já se passaram {days} dias desde a entrega.", "Sim, se ainda estiver dentro do prazo de 30 dias após a entrega. Abra Pedidos → {order}, clique em \"Devolver itens\" e imprima a etiqueta pré-paga. O reembolso é feito em 5 a 7 dias úteis após recebermos o produto.", "pt"},
}

// billingCase is a billing question. Slots: {amount} {date} {plan} {monthly} {annual}
// {saving} {invoice} {country}.
type billingCase struct {
	key       string
	questions []string
	answer    string
}

var billingCases = []billingCase{
	{"double_charge", []string{
		"I was charged {amount} twice on {date} for my {plan} plan. Can you refund the duplicate?",
		"Why do I see two charges of {amount} on my card from you this month?",
	}, "I'm sorry about the duplicate charge. Often the second {amount} is a pending authorization from a failed payment retry, and your bank releases it automatically within 3–5 business days.\n\nIf both charges still show as posted after that, reply with the date of each charge and the last four digits of the card, and we'll refund the duplicate right away. You'll see the refund on your statement within 5–10 business days, depending on your bank."},
	{"update_card", []string{
		"How do I update the credit card on my account? My old one expires this month.",
		"Our company card changed. Where do I put the new one for the {plan} subscription?",
	}, "You can update your payment method in a minute:\n\n1. Go to Settings → Billing → Payment method.\n2. Click \"Replace card\" and enter the new card details.\n3. Save — the new card is used for your next invoice.\n\nOnly workspace owners and billing admins see this page. If a payment already failed, click \"Retry payment\" after saving to settle the open invoice."},
	{"invoice_refund", []string{
		"Can I get a refund for invoice {invoice}? We cancelled the {plan} plan on {date} but were billed anyway.",
		"We were billed {amount} on invoice {invoice} after cancelling. Please refund it.",
	}, "If the cancellation was confirmed before the renewal date, you shouldn't have been billed, and we'll refund invoice {invoice} in full. I've noted the cancellation date you gave ({date}); once billing confirms it against the account history, the refund is issued to the original payment method and usually arrives within 5–10 business days.\n\nYou'll get an email with a credit note for your records."},
	{"annual_switch", []string{
		"How much would I save by switching from monthly to annual billing on the {plan} plan?",
		"Is annual billing cheaper for the {plan} plan? We're paying {monthly} a month per seat.",
	}, "Annual billing on the {plan} plan costs {annual} per seat per year instead of {monthly} per seat per month — that's {saving} less per seat per year, or two months free.\n\nYou can switch in Settings → Billing → Change billing period. The unused part of your current month is credited against the first annual invoice."},
	{"vat", []string{
		"How do I add our VAT number to invoices? Our company is in {country}.",
		"Our invoices are missing our VAT ID. We're a business in {country}. Can you fix past invoices too?",
	}, "Add your VAT ID in Settings → Billing → Tax information. Once it's validated against the EU VIES database, future invoices show it and, for businesses outside our home country, apply the reverse charge so no VAT is added.\n\nPast invoices can be reissued with the VAT ID on request: reply with the invoice numbers and we'll send corrected copies."},
	{"cancel", []string{
		"How do I cancel my {plan} subscription, and will I be charged again?",
		"If I cancel the {plan} plan today, do I get charged for next month?",
	}, "To cancel, go to Settings → Billing → Cancel subscription. You keep access until the end of the current billing period and won't be charged again after that.\n\nIf you're on annual billing, cancelling stops the next renewal; the current year isn't refunded pro rata, but you keep full access until it ends."},
}

// codeTask is a code-generation request with a correct answer.
type codeTask struct {
	lang, fenceLang, task string
	code                  string
	explain               string
}

var codeTasks = []codeTask{
	{"Python", "python", "reverses the order of the words in a sentence",
		"def reverse_words(sentence: str) -> str:\n    \"\"\"Return the words of sentence in reverse order.\"\"\"\n    return \" \".join(reversed(sentence.split()))",
		"`split()` with no argument splits on any run of whitespace and drops empty strings, so leading, trailing and repeated spaces are handled. An empty string returns an empty string."},
	{"Go", "go", "checks whether a string is a palindrome, ignoring case and punctuation",
		"func IsPalindrome(s string) bool {\n\tvar rs []rune\n\tfor _, r := range strings.ToLower(s) {\n\t\tif unicode.IsLetter(r) || unicode.IsDigit(r) {\n\t\t\trs = append(rs, r)\n\t\t}\n\t}\n\tfor i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {\n\t\tif rs[i] != rs[j] {\n\t\t\treturn false\n\t\t}\n\t}\n\treturn true\n}",
		"Working on runes rather than bytes keeps multi-byte characters such as \"é\" intact, and filtering with `unicode.IsLetter`/`unicode.IsDigit` drops spaces and punctuation before the two-pointer comparison."},
	{"Python", "python", "removes duplicates from a list while preserving the original order",
		"def dedupe(items):\n    \"\"\"Return items without duplicates, keeping first occurrences in order.\"\"\"\n    return list(dict.fromkeys(items))",
		"Dictionaries keep insertion order (guaranteed since Python 3.7), so `dict.fromkeys` keeps the first occurrence of each item. The items must be hashable; for unhashable items such as lists, track seen values in a loop instead."},
	{"JavaScript", "javascript", "debounces another function",
		"function debounce(fn, waitMs) {\n  let timer;\n  return function (...args) {\n    clearTimeout(timer);\n    timer = setTimeout(() => fn.apply(this, args), waitMs);\n  };\n}",
		"Each call resets the timer, so `fn` runs once, `waitMs` after the last call. Using a regular `function` for the wrapper preserves `this`, which matters when the debounced function is used as a method or event handler."},
	{"Go", "go", "counts the lines of a file that contain a given word",
		"func CountLines(path, word string) (int, error) {\n\tf, err := os.Open(path)\n\tif err != nil {\n\t\treturn 0, err\n\t}\n\tdefer f.Close()\n\n\tn := 0\n\tsc := bufio.NewScanner(f)\n\tfor sc.Scan() {\n\t\tif strings.Contains(sc.Text(), word) {\n\t\t\tn++\n\t\t}\n\t}\n\treturn n, sc.Err()\n}",
		"`bufio.Scanner` reads the file line by line without loading it into memory. Note its default 64 KiB line limit: for files with longer lines, call `sc.Buffer` with a larger maximum. Returning `sc.Err()` surfaces read errors instead of silently returning a partial count."},
	{"Python", "python", "parses an ISO 8601 date string and returns the weekday name",
		"from datetime import date\n\n\ndef weekday_name(iso: str) -> str:\n    return date.fromisoformat(iso).strftime(\"%A\")",
		"`date.fromisoformat` parses strings like \"2026-11-28\" and raises `ValueError` for malformed input. `%A` gives the full weekday name in the current locale (\"Saturday\" in the default C locale)."},
	{"TypeScript", "typescript", "groups an array of objects by a key function",
		"function groupBy<T, K extends PropertyKey>(items: T[], key: (item: T) => K): Record<K, T[]> {\n  const out = {} as Record<K, T[]>;\n  for (const item of items) {\n    (out[key(item)] ??= []).push(item);\n  }\n  return out;\n}",
		"The `??=` operator creates each group's array on first use. On recent runtimes (ES2024) you can use the built-in `Object.groupBy(items, key)` instead."},
	{"Go", "go", "retries an HTTP GET request with exponential backoff",
		"func getWithRetry(ctx context.Context, c *http.Client, url string, attempts int) (*http.Response, error) {\n\tbackoff := 100 * time.Millisecond\n\tvar lastErr error\n\tfor i := 0; i < attempts; i++ {\n\t\treq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)\n\t\tif err != nil {\n\t\t\treturn nil, err\n\t\t}\n\t\tresp, err := c.Do(req)\n\t\tif err == nil && resp.StatusCode < 500 {\n\t\t\treturn resp, nil\n\t\t}\n\t\tif err == nil {\n\t\t\tresp.Body.Close()\n\t\t\terr = fmt.Errorf(\"server error: %s\", resp.Status)\n\t\t}\n\t\tlastErr = err\n\t\tselect {\n\t\tcase <-ctx.Done():\n\t\t\treturn nil, ctx.Err()\n\t\tcase <-time.After(backoff + rand.N(backoff)):\n\t\t}\n\t\tbackoff *= 2\n\t}\n\treturn nil, fmt.Errorf(\"after %d attempts: %w\", attempts, lastErr)\n}",
		"Only network errors and 5xx responses are retried; 4xx responses are returned to the caller because retrying won't fix them. The jitter (`rand.N` from math/rand/v2) spreads retries from many clients, and the context bounds the total time."},
	{"Rust", "rust", "computes the nth Fibonacci number iteratively",
		"fn fib(n: u32) -> u64 {\n    let (mut a, mut b) = (0u64, 1u64);\n    for _ in 0..n {\n        (a, b) = (b, a + b);\n    }\n    a\n}",
		"The loop runs in O(n) time and O(1) space. `u64` overflows after fib(93); use `checked_add` to detect that, or `u128` to go a little further."},
	{"Python", "python", "flattens an arbitrarily nested list",
		"def flatten(items):\n    for item in items:\n        if isinstance(item, (list, tuple)):\n            yield from flatten(item)\n        else:\n            yield item",
		"It's a generator, so call `list(flatten(data))` to get a list. Strings are deliberately not treated as nested sequences; very deep nesting (over ~1000 levels) hits Python's recursion limit."},
}

var codeQuestionForms = []string{
	"Write a {lang} function that {task}.",
	"Can you show me {lang} code that {task}? Please keep it idiomatic.",
	"I need a small {lang} helper that {task}.",
	"How would you write a function in {lang} that {task}?",
}

var codeContexts = []string{
	"", "", " It should handle empty input.", " No external libraries please.", " Add a short docstring or comment.",
	" This is for a CLI tool I'm writing.", " Performance matters, the input can be large.", " I'm new to {lang}, so explain briefly.",
}

// debugCase is a "why does this fail" question with a fix.
type debugCase struct {
	lang, fenceLang, code, errText, answer string
}

var debugCases = []debugCase{
	{"Python", "python", "total = 42\nprint(\"Total: \" + total)", "TypeError: can only concatenate str (not \"int\") to str",
		"Python doesn't convert numbers to strings implicitly when you use `+`. Convert explicitly or use an f-string:\n\n" + fence + "python\ntotal = 42\nprint(f\"Total: {total}\")\n" + fence + "\n\nThe f-string calls `format` on `total` for you, which also lets you add formatting such as `{total:,}`."},
	{"Go", "go", "func main() {\n\tch := make(chan int)\n\tch <- 1\n\tfmt.Println(<-ch)\n}", "fatal error: all goroutines are asleep - deadlock!",
		"The channel is unbuffered, so `ch <- 1` blocks until another goroutine receives — but the only receiver is the next line of the same goroutine. Either send from a separate goroutine or give the channel a buffer:\n\n" + fence + "go\nfunc main() {\n\tch := make(chan int, 1)\n\tch <- 1\n\tfmt.Println(<-ch)\n}\n" + fence},
	{"JavaScript", "javascript", "const [data, setData] = useState();\nuseEffect(() => { fetch('/api/items').then(r => r.json()).then(setData); }, []);\nreturn <ul>{data.items.map(i => <li key={i.id}>{i.name}</li>)}</ul>;", "TypeError: Cannot read properties of undefined (reading 'items')",
		"On the first render the fetch hasn't finished, so `data` is still `undefined`. Initialise the state with the shape you expect, or render nothing until the data arrives:\n\n" + fence + "javascript\nconst [data, setData] = useState({ items: [] });\n" + fence + "\n\nor guard with `data?.items?.map(...) ?? null`."},
	{"Python", "python", "count = 0\n\ndef increment():\n    count += 1\n\nincrement()", "UnboundLocalError: cannot access local variable 'count' where it is not associated with a value",
		"Because `increment` assigns to `count`, Python treats `count` as a local variable for the whole function, and `count += 1` reads it before it has a value. Declare that you mean the module-level variable:\n\n" + fence + "python\ndef increment():\n    global count\n    count += 1\n" + fence + "\n\nIn a nested function use `nonlocal` instead. Better still, return the new value rather than mutating a global."},
	{"Go", "go", "var counts map[string]int\nfor _, w := range words {\n\tcounts[w]++\n}", "panic: assignment to entry in nil map",
		"A `var` declaration gives you a nil map: you can read from it, but writing panics. Create it with `make` before the loop:\n\n" + fence + "go\ncounts := make(map[string]int)\nfor _, w := range words {\n\tcounts[w]++\n}\n" + fence},
}

var debugQuestionForms = []string{
	"Why do I get `{err}` when I run this?\n\n" + fence + "{fl}\n{code}\n" + fence,
	"This {lang} code fails with:\n\n{err}\n\n" + fence + "{fl}\n{code}\n" + fence + "\n\nWhat's wrong?",
	"Getting \"{err}\" — how do I fix it?\n\n{code}",
}

// sqlDialect renders the parts of the SQL answers that differ between databases.
type sqlDialect struct {
	name  string
	since string // a "%d days ago" expression; %d is the day count
	day   string // truncation of created_at to a date
	hours string // average hours between opened_at and closed_at
	p95   string // the 95th-percentile aggregate of latency_ms, "" if unsupported
}

var sqlDialects = []sqlDialect{
	{"PostgreSQL", "now() - interval '%d days'", "created_at::date", "avg(extract(epoch FROM closed_at - opened_at)) / 3600", "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"},
	{"MySQL", "NOW() - INTERVAL %d DAY", "DATE(created_at)", "AVG(TIMESTAMPDIFF(SECOND, opened_at, closed_at)) / 3600", ""},
	{"ClickHouse", "now() - INTERVAL %d DAY", "toDate(created_at)", "avg(dateDiff('second', opened_at, closed_at)) / 3600", "quantile(0.95)(latency_ms)"},
	{"SQLite", "datetime('now', '-%d days')", "date(created_at)", "avg((julianday(closed_at) - julianday(opened_at)) * 24)", ""},
}

// sqlShape is a SQL question with slots {dialect} {n} {days}; its answer has slots {since}
// {day} {hours} {p95} {n}.
type sqlShape struct {
	key       string
	questions []string
	query     string
	explain   string
	needsP95  bool
}

var sqlShapes = []sqlShape{
	{"top_customers", []string{
		"Write a {dialect} query that returns the top {n} customers by total revenue over the last {days} days. Tables: customers(id, name, email, country) and orders(id, customer_id, total_cents, status, created_at). Only count paid orders.",
		"In {dialect}, how do I get the {n} customers who spent the most in the past {days} days? orders has customer_id, total_cents, status and created_at; customers has id and name.",
	}, "SELECT c.id, c.name, SUM(o.total_cents) / 100.0 AS revenue\nFROM orders AS o\nJOIN customers AS c ON c.id = o.customer_id\nWHERE o.status = 'paid'\n  AND o.created_at >= {since}\nGROUP BY c.id, c.name\nORDER BY revenue DESC\nLIMIT {n};",
		"Dividing by `100.0` keeps the cents as decimals, and grouping by `c.id` as well as `c.name` keeps two customers with the same name apart.", false},
	{"daily_signups", []string{
		"How do I count new signups per day for the last {days} days in {dialect}? The table is users(id, email, created_at).",
		"{dialect}: daily count of rows in users for the past {days} days, oldest day first.",
	}, "SELECT {day} AS day, COUNT(*) AS signups\nFROM users\nWHERE created_at >= {since}\nGROUP BY day\nORDER BY day;",
		"Days without any signups don't appear in the result; join against a calendar table (or a generated series of dates) if you need explicit zeros.", false},
	{"inactive_customers", []string{
		"Find customers who haven't placed an order in the last {days} days. Tables: customers(id, name, email) and orders(id, customer_id, created_at). {dialect}, please.",
		"Write a {dialect} query listing customers with no orders since {days} days ago, including customers who never ordered.",
	}, "SELECT c.id, c.name, c.email\nFROM customers AS c\nWHERE NOT EXISTS (\n  SELECT 1\n  FROM orders AS o\n  WHERE o.customer_id = c.id\n    AND o.created_at >= {since}\n);",
		"`NOT EXISTS` also returns customers who never ordered and, unlike `NOT IN`, isn't tripped up by NULL customer ids in orders.", false},
	{"resolution_time", []string{
		"What's the {dialect} query for the average ticket resolution time in hours per priority, for tickets opened in the last {days} days? tickets(id, priority, opened_at, closed_at).",
		"Average hours from opened_at to closed_at by priority in the tickets table ({dialect}), last {days} days only.",
	}, "SELECT priority, {hours} AS avg_hours, COUNT(*) AS tickets\nFROM tickets\nWHERE closed_at IS NOT NULL\n  AND opened_at >= {since}\nGROUP BY priority\nORDER BY avg_hours DESC;",
		"Open tickets are excluded because they have no resolution time yet; report them separately if you need a backlog count.", false},
	{"p95_latency", []string{
		"How do I compute p95 latency per model over the last {days} days in {dialect}? Table requests(ts, model, latency_ms, status_code).",
		"{dialect} query: 95th percentile of latency_ms by model for successful requests (status_code 200) in the last {days} days.",
	}, "SELECT model, {p95} AS p95_ms, count(*) AS requests\nFROM requests\nWHERE status_code = 200\n  AND ts >= {since}\nGROUP BY model\nORDER BY p95_ms DESC;",
		"Failed requests are filtered out because timeouts would dominate the tail; track them with a separate error-rate query.", true},
	{"running_total", []string{
		"Write a {dialect} query that shows daily revenue and a running total for the last {days} days from orders(id, total_cents, created_at).",
		"How can I add a cumulative revenue column per day in {dialect}? orders has total_cents and created_at; last {days} days.",
	}, "SELECT day, revenue, SUM(revenue) OVER (ORDER BY day) AS running_total\nFROM (\n  SELECT {day} AS day, SUM(total_cents) / 100.0 AS revenue\n  FROM orders\n  WHERE created_at >= {since}\n  GROUP BY day\n) AS daily\nORDER BY day;",
		"The inner query aggregates per day and the window function accumulates over the days in order; `ORDER BY day` in the window is what makes it a running total.", false},
}

// docOption is a configuration setting with its documented behaviour.
type docOption struct {
	system, opt, symptom, answer string
}

var docOptions = []docOption{
	{"Kafka", "max.poll.interval.ms", "our consumers keep getting kicked out of the group during long batches",
		"`max.poll.interval.ms` is the longest a consumer may go between calls to `poll()` before the group coordinator considers it failed and triggers a rebalance, handing its partitions to other members. The default is 300000 ms (5 minutes). If a batch can take longer to process, raise it or lower `max.poll.records` so each poll returns less work."},
	{"Kafka", "session.timeout.ms", "consumers get evicted from the group during long GC pauses",
		"`session.timeout.ms` is how long the group coordinator waits for heartbeats from a consumer before removing it from the group. The default is 45000 ms (45 seconds) since Kafka 3.0; it was 10 seconds before. Heartbeats come from a background thread every `heartbeat.interval.ms` (default 3000 ms), so this setting detects dead processes, while `max.poll.interval.ms` detects stuck processing."},
	{"Kafka", "auto.offset.reset", "a new consumer group skipped all the existing messages",
		"`auto.offset.reset` decides where a consumer starts when its group has no committed offset for a partition, or the committed offset no longer exists: `latest` (the default) starts at the end of the partition, `earliest` at the beginning, and `none` throws an error. It has no effect once a valid committed offset exists."},
	{"Kafka", "enable.auto.commit", "we lose messages when a worker crashes",
		"With `enable.auto.commit=true` (the default) the consumer commits the offsets returned by `poll()` every `auto.commit.interval.ms` (default 5000 ms). If your code processes records asynchronously, offsets can be committed before processing finishes, so a crash loses those records. Set it to false and commit explicitly after processing to get at-least-once delivery."},
	{"Redis", "maxmemory-policy", "writes started failing with OOM errors",
		"`maxmemory-policy` decides what Redis does when `maxmemory` is reached. The default is `noeviction`: commands that need more memory fail with an OOM error while reads keep working. For a cache, `allkeys-lru` or `allkeys-lfu` is usually what you want; the `volatile-*` policies only evict keys that have a TTL."},
	{"ClickHouse", "max_threads", "one heavy dashboard query slows down every other query",
		"`max_threads` is the maximum number of threads used to process a single query (not counting threads that read from remote servers). By default it's set automatically to the number of physical CPU cores. Lowering it for dashboard users, for example in a settings profile, limits how much of the server one query can take."},
	{"PostgreSQL", "work_mem", "our reporting queries create lots of temporary files",
		"`work_mem` is the memory a single sort or hash operation may use before spilling to temporary files; the default is 4MB. One complex query can use several multiples of it, and many sessions can do so at once, so raise it with `max_connections` in mind — or raise it only for the reporting role with `ALTER ROLE ... SET work_mem`."},
	{"PostgreSQL", "shared_buffers", "the server has 64 GB of RAM but the buffer cache hit rate is low",
		"`shared_buffers` is the memory PostgreSQL uses for its own page cache. The default is 128MB, which is very conservative; about 25% of RAM is a common starting point on a dedicated server. Changing it requires a restart."},
	{"nginx", "client_max_body_size", "uploads over 1 MB fail with 413 errors",
		"`client_max_body_size` is the maximum allowed size of a client request body; larger requests get `413 Request Entity Too Large`. The default is 1m. It can be set in the http, server or location context, and 0 disables the check."},
	{"Kafka", "retention.ms", "old messages disappeared after about a week",
		"`retention.ms` is how long a topic keeps log segments before deleting them (with `cleanup.policy=delete`). The default is 604800000 ms (7 days), inherited from the broker's `log.retention.hours=168`. Set it per topic with `kafka-configs.sh --alter`; -1 means no time limit."},
}

var docQuestionForms = []string{
	"What does `{opt}` do in {system}, and what's the default?",
	"Is it safe to change {opt} in {system}? What is it set to by default?",
	"Explain {system}'s {opt} setting in a couple of sentences.",
	"We run {system} in production and {symptom}. Is {opt} the setting to look at? What does it control?",
}

// sentence is one sentence of a document to summarise, with the bullet a good summary gives
// for it.
type sentence struct{ full, bullet string }

// docBank is a kind of document users paste for summarisation. Slots: {date} {service}
// {region} {dur} {pct} {n} {m} {k} {q} {arr} {churn} {deals} {hires} {target} {csat}
// {project} {attendees} {p1} {p2} {version} {product} {agree} {iaa}.
type docBank struct {
	name      string
	sentences []sentence
}

var docBanks = []docBank{
	{"incident report", []sentence{
		{"On {date}, the {service} service experienced a partial outage in {region} that lasted {dur} minutes.", "{service} had a {dur}-minute partial outage in {region} on {date}."},
		{"At 14:02 UTC, error rates on {service} rose from a baseline of 0.2% to {pct}%, and on-call was paged by the latency SLO alert.", "Errors peaked at {pct}%; on-call was paged by the SLO alert."},
		{"The root cause was a configuration change that reduced the database connection pool from 200 to 20 connections.", "Root cause: a config change shrank the DB connection pool from 200 to 20."},
		{"The change had passed code review but was not exercised by the staging load test, which runs at a tenth of production traffic.", "Staging load tests (10% of production traffic) missed it."},
		{"Rolling back the change restored normal error rates within six minutes.", "Rollback fixed it within 6 minutes."},
		{"Approximately {n} customer requests failed during the incident, and {m} checkout sessions were abandoned.", "~{n} requests failed; {m} checkouts abandoned."},
		{"No data was lost, but some customers received duplicate confirmation emails after client retries.", "No data loss; some duplicate confirmation emails."},
		{"The status page was updated 25 minutes after detection, which is longer than our 10-minute target.", "Status page update took 25 min (target: 10)."},
		{"Customer support handled {k} related tickets and has prepared a macro in case the issue recurs.", "Support handled {k} tickets; a macro is ready."},
		{"Follow-up actions include a pool-size check in the deployment pipeline and a weekly load test at full production scale.", "Actions: pool-size check in CI/CD; weekly full-scale load test."},
	}},
	{"quarterly update", []sentence{
		{"In {q}, revenue grew {pct}% quarter over quarter, bringing annual recurring revenue to ${arr} million.", "{q}: ARR ${arr}M, up {pct}% QoQ."},
		{"Net revenue retention stayed above 110%, driven mostly by seat expansion in existing enterprise accounts.", "NRR above 110%, from enterprise seat expansion."},
		{"Gross churn rose slightly to {churn}%, concentrated among small teams on the Starter plan.", "Churn up to {churn}%, mostly Starter-plan teams."},
		{"The sales team closed {deals} new enterprise deals, including two in the healthcare sector.", "{deals} new enterprise deals (two in healthcare)."},
		{"Hiring was slower than planned: we added {hires} people against a target of {target}.", "Hired {hires} of {target} planned."},
		{"Infrastructure costs fell 12% after the migration to reserved instances was completed in August.", "Infra costs down 12% after the reserved-instance migration."},
		{"The mobile app launch slipped to next quarter because of an App Store review delay.", "Mobile launch slipped a quarter (App Store review)."},
		{"Customer satisfaction reached {csat}%, up two points, after the new onboarding flow shipped.", "CSAT {csat}% (+2) after the new onboarding flow."},
		{"Priorities for next quarter are the usage-based pricing pilot, the SOC 2 Type II renewal, and getting first support responses under four hours.", "Next: usage-based pricing pilot, SOC 2 renewal, <4 h first response."},
	}},
	{"meeting notes", []sentence{
		{"The {project} weekly sync on {date} was attended by {attendees}.", "{project} sync on {date} ({attendees})."},
		{"The team agreed to freeze the API schema by Friday so that the mobile client can start integration.", "API schema freeze by Friday so mobile can integrate."},
		{"{p1} raised a concern that the migration script has not been tested against the full production dataset.", "{p1}: migration script untested on full production data."},
		{"It was decided to run a dry run of the migration on a snapshot next Tuesday.", "Migration dry run on a snapshot next Tuesday."},
		{"The design review for the new dashboard is pushed to next week because two reviewers are out.", "Dashboard design review moved to next week."},
		{"{p2} will own the rollout plan and share a draft by Thursday.", "{p2} owns the rollout plan; draft due Thursday."},
		{"There is still no decision on deprecating the v1 endpoints this quarter; product will talk to the three largest customers first.", "v1 deprecation undecided until product talks to the top 3 customers."},
		{"The on-call rotation will switch to a follow-the-sun model starting next month.", "On-call moves to follow-the-sun next month."},
		{"Budget for a dedicated load-testing environment was approved.", "Load-testing environment budget approved."},
	}},
	{"release notes", []sentence{
		{"Version {version} introduces offline mode, letting users view and edit documents without a network connection.", "{version} adds offline mode."},
		{"Sync conflicts are now resolved automatically with last-writer-wins, and the overwritten version is kept in the document history.", "Sync conflicts auto-resolved (last writer wins, history kept)."},
		{"Startup time on Android has been reduced by about 40% on mid-range devices.", "~40% faster startup on mid-range Android."},
		{"We fixed a bug where exporting a PDF with embedded images could crash the app on iOS 17.", "Fixed a PDF-export crash on iOS 17."},
		{"The legacy sharing dialog has been removed; all sharing now uses the new permissions model.", "Legacy sharing dialog removed."},
		{"Administrators can now enforce single sign-on for every member of a workspace.", "Admins can enforce SSO workspace-wide."},
		{"Dark mode now follows the system setting by default.", "Dark mode follows the system setting."},
		{"Known issue: search results may be incomplete for workspaces with more than 100,000 documents until reindexing finishes.", "Known issue: incomplete search in very large workspaces during reindexing."},
	}},
	{"research abstract", []sentence{
		{"We study whether small language models can be trained to judge the quality of much longer model outputs.", "Question: can small models judge long outputs?"},
		{"We collect {n} pairwise human preference judgments across summarization, dialogue and code tasks.", "{n} human preference labels across three task types."},
		{"A 2B-parameter judge fine-tuned on this data agrees with human raters {agree}% of the time, close to the inter-annotator agreement of {iaa}%.", "A 2B judge reaches {agree}% agreement vs. {iaa}% between humans."},
		{"Agreement drops sharply for responses longer than 2,000 tokens, where the judge tends to prefer the longer answer.", "Weak on responses over 2,000 tokens (length bias)."},
		{"Randomizing the order of candidate responses reduces position bias but does not remove it.", "Order randomization reduces but doesn't remove position bias."},
		{"Our results suggest that small judges are a cost-effective first filter, but they should be paired with periodic human audits.", "Small judges: cheap first filter, plus human audits."},
		{"We release the dataset and evaluation code to support further work.", "Data and code are released."},
	}},
	{"customer review", []sentence{
		{"I bought the {product} three weeks ago and wanted to share some honest feedback.", "Review of the {product} after three weeks."},
		{"Setup took less than ten minutes and the instructions were clear.", "Setup was quick and clear."},
		{"However, the battery only lasts about four hours, not the twelve that are advertised.", "Battery lasts ~4 h, not the advertised 12."},
		{"When I contacted support, I waited two days for a reply that just linked to the FAQ.", "Support was slow and unhelpful."},
		{"The build quality is excellent and it looks great.", "Excellent build quality."},
		{"I would only recommend it if the battery issue is fixed in a firmware update.", "Recommended only if a firmware update fixes the battery."},
		{"I'm considering returning it before the 30-day window closes.", "Considering a return within 30 days."},
	}},
}

var summarizeForms = []string{
	"Summarize the following {doc} in {nb} bullet points:\n\n{text}",
	"TL;DR of this {doc}, please, as bullet points:\n\n{text}",
	"Can you give me a short bullet-point summary of this {doc} for {audience}?\n\n\"\"\"\n{text}\n\"\"\"",
	"{text}\n\nSummarize the above in at most {nb} bullets.",
}

var summarizeProseForms = []string{
	"Summarize this {doc} in one short paragraph:\n\n{text}",
	"Write a two-sentence summary of the following {doc} for {audience}.\n\n{text}",
}

var audiences = []string{"the leadership team", "a customer-facing email", "the engineering all-hands", "our weekly newsletter", "someone who missed the meeting"}

// emailPurpose is an email drafting task. Slots: {rname} {sender} {invoice} {days} {service}
// {system} {manager} {order} {reason}.
type emailPurpose struct {
	key, recipient, purpose, draft string
}

var emailPurposes = []emailPurpose{
	{"reschedule", "my client", "asking to move our Thursday meeting to next week",
		"Subject: Rescheduling our Thursday meeting\n\nHi {rname},\n\nWould it be possible to move our Thursday meeting to next week? Something has come up on my side that I can't move, and I'd rather give our discussion proper attention than squeeze it in.\n\nI'm free on Tuesday or Wednesday afternoon next week, and happy to work around your calendar if neither suits.\n\nSorry for the short notice, and thank you for your flexibility.\n\nBest regards,\n{sender}"},
	{"overdue_invoice", "a customer", "following up on invoice {invoice}, which is {days} days overdue",
		"Subject: Follow-up: invoice {invoice}\n\nHi {rname},\n\nI hope you're well. I'm following up on invoice {invoice}, which was due {days} days ago and still shows as unpaid on our side.\n\nCould you let me know when we can expect payment, or whether anything is holding it up? If it has already been sent, please share the remittance details so we can match it.\n\nThank you,\n{sender}"},
	{"thank_onboarding", "our account manager", "thanking them for yesterday's onboarding session",
		"Subject: Thank you for the onboarding session\n\nHi {rname},\n\nThank you for walking our team through the onboarding yesterday. The session was clear and practical, and the examples you chose made the setup much easier to follow.\n\nWe've already started configuring our workspace and will reach out if questions come up.\n\nMany thanks,\n{sender}"},
	{"decline_proposal", "a vendor", "politely declining their proposal for {service}",
		"Subject: Your proposal for {service}\n\nHi {rname},\n\nThank you for the detailed proposal for {service} and for the time your team put into it. After reviewing it against our budget and timeline for next year, we've decided not to move forward at this point.\n\nThis isn't a reflection on the quality of your work, and we'd be glad to stay in touch for future projects.\n\nKind regards,\n{sender}"},
	{"access_request", "the IT team", "requesting read access to the {system} dashboard",
		"Subject: Access request: {system} dashboard\n\nHi {rname},\n\nCould you grant me read access to the {system} dashboard? I need it to {reason}.\n\nMy manager, {manager}, has approved the request and is copied here. Please let me know if you need a ticket number.\n\nThanks,\n{sender}"},
	{"apology_delay", "a customer", "apologizing that their order {order} will ship {days} days late",
		"Subject: Update on your order {order}\n\nHi {rname},\n\nI'm sorry to let you know that your order {order} will ship about {days} days later than planned because of a delay at our warehouse.\n\nWe've upgraded your delivery to express shipping at no cost, and you'll receive a tracking link as soon as it leaves us. If you'd prefer to cancel, just reply to this email and we'll refund you in full.\n\nThank you for your patience,\n{sender}"},
}

var emailTones = []string{"polite", "friendly", "formal", "short and direct", "warm but professional"}

var accessReasons = []string{"track the weekly churn numbers", "monitor the new payment provider", "prepare the quarterly board report", "investigate slow checkout requests"}

var emailForms = []string{
	"Write a {tone} email to {recipient} ({rname}) {purpose}. Sign it as {sender}.",
	"Draft an email to {recipient}, {rname}, {purpose}. Tone: {tone}. Keep it under {words} words. I'm {sender}.",
	"Help me write an email {purpose}. It goes to {rname}, {recipient}. Make it {tone}. My name is {sender}.",
}

// faq is a short, generic question: the head of the prompt distribution.
type faq struct {
	app, template, question, answer string
	code                            bool
}

var faqs = []faq{
	{"helpdesk", "helpdesk.faq.password_reset", "How do I reset my password?", "Go to the sign-in page and click \"Forgot password\". Enter the email address on your account, and we'll send you a link to choose a new password; the link is valid for 30 minutes. If the email doesn't arrive within a few minutes, check your spam folder.", false},
	{"helpdesk", "helpdesk.faq.order_status", "Where is my order?", "You can see the status of every order under Account → Orders. Once an order ships, that page shows the carrier and a tracking link, and we email you the same link. Most orders ship within 1–2 business days.", false},
	{"billing", "billing.faq.cancel", "How do I cancel my subscription?", "Go to Settings → Billing → Cancel subscription. You keep access until the end of the current billing period and won't be charged again.", false},
	{"billing", "billing.faq.refund", "Can I get a refund?", "Yes, in most cases. Physical products can be returned within 30 days of delivery for a full refund, and subscription charges are refunded if you cancel within 14 days of a renewal. Start from Account → Orders or Settings → Billing, or tell me which order or invoice it's about.", false},
	{"billing", "billing.faq.payment_methods", "What payment methods do you accept?", "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and Google Pay. Business plans can also pay by bank transfer against an invoice.", false},
	{"helpdesk", "helpdesk.faq.change_email", "How do I change my email address?", "Go to Settings → Profile, enter the new address under \"Email\" and click Save. We'll send a confirmation link to the new address; the change takes effect once you click it.", false},
	{"helpdesk", "helpdesk.faq.greeting", "hi", "Hi! How can I help you today?", false},
	{"helpdesk", "helpdesk.faq.international", "Do you ship internationally?", "Yes, we ship to over 40 countries. Shipping costs and delivery times are shown at checkout once you enter your address; orders outside the EU may be subject to import duties.", false},
	{"ide-plugin", "ide.faq.reverse_string", "Write a Python function to reverse a string.", "def reverse_string(s: str) -> str:\n    return s[::-1]\n\nThe slice `[::-1]` steps through the string backwards and works for any length, including the empty string.", true},
	{"ide-plugin", "ide.faq.center_div", "How do I center a div in CSS?", "Use flexbox on the parent:\n\n.parent {\n  display: flex;\n  justify-content: center;\n  align-items: center;\n}\n\n`justify-content` centers horizontally and `align-items` vertically; give the parent a height (e.g. `min-height: 100vh`) if you want to center within the viewport.", true},
	{"docs-search", "docs.faq.joins", "What's the difference between an INNER JOIN and a LEFT JOIN?", "An INNER JOIN returns only rows that have a match in both tables. A LEFT JOIN returns every row of the left table, plus the matching rows of the right table; where there is no match, the right table's columns are NULL.", false},
	{"docs-search", "docs.faq.consumer_group", "What is a Kafka consumer group?", "A consumer group is a set of consumers that share the work of reading a topic. Each partition is assigned to exactly one member of the group at a time, so adding consumers (up to the number of partitions) spreads the load, and the group's committed offsets record how far it has read.", false},
	{"email-drafts", "email.faq.out_of_office", "Write a short out-of-office reply for the holidays.", "Subject: Out of office\n\nThank you for your email. I'm out of the office for the holidays and will be back on January 5, with limited access to email until then. For anything urgent, please contact support@brightwave.example.\n\nHappy holidays!", false},
	{"ide-plugin", "ide.faq.list_vs_tuple", "Explain the difference between a list and a tuple in Python.", "Lists are mutable: you can add, remove and change elements. Tuples are immutable once created, which makes them hashable (usable as dict keys) when their elements are. Use lists for collections that change and tuples for fixed records like coordinates.", true},
	{"docs-search", "docs.faq.http_429", "What does HTTP status 429 mean?", "429 Too Many Requests means the client has sent too many requests in a given time and is being rate limited. The response often includes a Retry-After header saying how long to wait; clients should back off rather than retry immediately.", false},
	{"ide-plugin", "ide.faq.git_undo", "How do I undo the last git commit but keep the changes?", "Run `git reset --soft HEAD~1`. The commit is removed, and its changes stay staged in your working tree. Use `--mixed` instead to keep them but unstaged. Don't do this for commits you've already pushed to a shared branch — use `git revert` there.", true},
	{"billing", "billing.faq.pending_charge", "Why is there a pending charge on my card?", "A pending charge is usually an authorization: when you place an order or start a trial, we check that the card is valid, and your bank holds the amount briefly. It's released or converted into the final charge within 3–5 business days.", false},
	{"helpdesk", "helpdesk.faq.shipping_time", "How long does shipping take?", "Standard shipping takes 3–5 business days within the EU and the US, and express shipping 1–2 business days. International orders take 5–10 business days. You'll get a tracking link as soon as your order ships.", false},
	{"email-drafts", "email.faq.team_thanks", "Write a thank-you note to my team for hitting our quarterly goal.", "Subject: Thank you, team!\n\nHi all,\n\nWe hit our quarterly goal, and it's entirely down to the work each of you put in. Thank you for the long days, the quick fixes and the way you backed each other up.\n\nLet's celebrate on Friday — lunch is on me.\n\nBest,\n[Your name]", false},
	{"docs-search", "docs.faq.rfc3339", "What does an RFC 3339 timestamp look like?", "An RFC 3339 timestamp is a date, a \"T\", a time and a UTC offset, for example 2026-11-28T12:00:00Z or 2026-11-28T13:00:00+01:00. Fractional seconds are optional (12:00:00.5Z), and \"Z\" means UTC.", false},
	{"ide-plugin", "ide.faq.duplicate_emails", "Write a SQL query to find duplicate emails in a users table.", "SELECT email, COUNT(*) AS occurrences\nFROM users\nGROUP BY email\nHAVING COUNT(*) > 1\nORDER BY occurrences DESC;\n\nIf emails may differ only in case, group by `LOWER(email)` instead.", true},
	{"helpdesk", "helpdesk.faq.human", "Can I talk to a human?", "Of course. You can reach our support team by live chat from 8:00 to 20:00 CET on weekdays, or leave a message here and an agent will reply by email within one business day.", false},
}

// longSections extend good answers into long ones (several KB), per answer family.
var longSections = map[string][]string{
	"support": {
		"### If you don't see our email\n\nCheck your spam or promotions folder first, and search your inbox for messages from no-reply@brightwave.example. Some company mail servers hold messages from new senders for up to an hour, so if you're using a work address it may simply be delayed. Adding our address to your contacts makes future messages arrive reliably. If nothing has arrived after an hour, use the \"Resend\" button on the same page rather than starting over, because starting over invalidates the first link.",
		"### What happens next\n\nAs soon as you submit the request, you'll get a confirmation email with a case number. Our team reviews most requests within one business day; if we need more information, we'll reply to that email rather than opening a new conversation, so keep it handy. You can follow the status at any time under Account → Support requests, where each step is timestamped.",
		"### Refund timing\n\nRefunds go back to the original payment method. Card refunds usually appear within 5–10 business days depending on your bank, PayPal refunds within 1–3 days, and bank transfers within 3–5 business days. If you paid with a gift card, the amount is restored to the gift card immediately. The refund shows on your statement as a credit from BRIGHTWAVE, not as a reversal of the original charge.",
		"### Keeping your account secure\n\nWe'll never ask for your password or full card number by email or chat. If you receive a message that claims to be from us and asks for either, don't reply — forward it to our security team instead. We also recommend turning on two-step verification under Settings → Security; it takes a minute and protects your account even if your password leaks elsewhere.",
		"### Talking to a person\n\nIf the steps above don't solve it, our support team is available by live chat from 8:00 to 20:00 CET on weekdays and 10:00 to 16:00 on weekends. Outside those hours, leave a message and an agent will reply by email within one business day. Mention your order number so the agent can see the history without asking you to repeat anything.",
		"### Warranty and exchanges\n\nEvery product comes with a 2-year limited warranty covering manufacturing defects. Accidental damage isn't covered, but we offer a discounted replacement for items damaged within the first year. Exchanges for a different size or color are free within 30 days of delivery as long as the item is unused and in its original packaging; start them the same way as a return and pick \"Exchange\".",
		"### Frequently asked follow-ups\n\nCan I change my mind after starting a return? Yes — cancel it from the same page before you ship the parcel. Do I need the original box? It helps, but any sturdy box works. Can someone else drop off the parcel? Yes, the label isn't tied to a person. What if the label doesn't print? Show the QR code from the email at the drop-off point instead.",
	},
	"code": {
		"### How it works\n\nThe function walks the input exactly once and keeps only the state it needs for the current element, so memory use stays constant apart from the result itself. Each branch handles one case explicitly, which keeps the control flow easy to follow in a code review. If you later need to support a new case, add a branch rather than overloading an existing one; the tests below will tell you if you broke an old case.",
		"### Edge cases\n\nThink about empty input, a single element, very large input, and input containing unexpected characters or types. The version above handles the first two naturally. For very large input, the main risk is memory rather than time, so prefer streaming over building intermediate collections. For unexpected types, decide whether to fail loudly with a clear error or skip the value, and write that decision down in the doc comment.",
		"### Complexity\n\nTime complexity is linear in the size of the input and space complexity is linear in the size of the output. There's no hidden quadratic behavior: no repeated string concatenation in a loop and no membership tests against a list. If you profile it and find it slow, the bottleneck is almost certainly I/O or allocation, not the algorithm.",
		"### Testing it\n\nA table-driven test covers the behavior compactly: one row for the empty input, one for a single element, a few typical cases, and one regression case for every bug you fix later. Keep expected outputs literal rather than computed, so the test can't share a bug with the implementation. Property-based tests (for example, that applying the function twice gives a stable result where that should hold) are a cheap way to find edge cases you didn't think of.",
		"### Alternatives\n\nThe standard library or a well-known package may already do this; if so, prefer it, since it's documented and tested. A recursive version is often shorter but can hit recursion limits on deep input. A version built on iterators or generators avoids materializing intermediate results, at the cost of being a little harder to debug. Pick the one your team will find easiest to read in six months.",
		"### Common mistakes\n\nThe most common bugs in code like this are off-by-one errors at the boundaries, mutating the input while iterating over it, and swallowing errors instead of returning them. Another frequent one is relying on the order of a hash map, which many languages deliberately randomize. Code review checklists that name these explicitly catch most of them before they reach production.",
		"### Performance notes\n\nIf this sits on a hot path, measure before optimizing: a micro-benchmark with realistic input sizes will tell you more than intuition. Preallocating the output when its size is known avoids repeated growth. Avoid converting between string and byte representations inside the loop. Beyond that, the biggest wins usually come from calling the function less often, for example by caching results for repeated inputs.",
	},
	"prose": {
		"### Context\n\nThis comes at a time when the team is balancing several competing priorities, and the decisions recorded here affect planning for the next two quarters. Some of the numbers are preliminary and may be revised once the finance team closes the month, so treat small differences with caution. Where the source text was ambiguous, this summary keeps the original wording rather than guessing at the intent.",
		"### Key risks\n\nThe main risks are schedule slips caused by dependencies on other teams, the cost of running two systems in parallel during the transition, and the chance that customers notice changes before communication goes out. None of these is new, but together they make the timeline tight. The mitigations listed are reasonable; the one most likely to be skipped under pressure is the dry run, which is also the most valuable.",
		"### Open questions\n\nSeveral points remain unresolved: who owns the final sign-off, what the fallback is if the first milestone slips, and how success will be measured after launch. It would help to assign an owner and a date to each of these before the next review, so they don't quietly carry over from one meeting to the next.",
		"### Recommendations\n\nKeep the scope of the first phase small, communicate changes to customers early and in plain language, and schedule a short retrospective two weeks after launch. Track one or two metrics that clearly show whether the change worked, and agree in advance what result would trigger a rollback.",
		"### Timeline\n\nThe work falls into three phases: preparation over the next two weeks, a gradual rollout over the following month, and a clean-up phase once the old path is switched off. Each phase has a clear exit criterion, which makes it easier to report progress honestly and to notice early when something is off track.",
		"### Background\n\nThe situation described here builds on earlier discussions from the previous quarter, when the same concerns were raised but deferred. Since then, usage has grown and the cost of doing nothing has become more visible, which is why the topic is back on the agenda with more urgency and a concrete proposal attached.",
	},
	"docs": {
		"### How to check the current value\n\nThe effective value can differ from the documented default because it may be set in a configuration file, overridden per client or per topic, or changed at runtime. Always check what the running system actually uses, for example with the configuration-describe command or the system settings table, rather than reading the config file in the repository, which may not have been deployed yet.",
		"### Related settings\n\nThis setting rarely acts alone. Timeouts interact with heartbeat and retry settings, memory limits interact with concurrency limits, and size limits interact with the limits of every proxy in front of the server. When you change one, review its neighbors in the same section of the documentation so you don't simply move the bottleneck elsewhere.",
		"### When to change it\n\nChange it when you have a measured problem that it explains: errors or metrics that point to it directly, not just a suspicion. Change it in small steps, one setting at a time, and record the reason next to the setting in your configuration repository so the next person knows why it differs from the default.",
		"### Monitoring\n\nAfter the change, watch the metrics that motivated it and the ones it could make worse. For timeouts, that means both the error rate and the time it takes to detect real failures. For memory settings, watch both latency and memory pressure on the host. Set an alert on the metric that would tell you the change was a mistake.",
		"### Rolling out safely\n\nApply the change to one instance or one non-critical environment first, let it run through a full traffic cycle, and compare it with the others before rolling it out everywhere. Keep the previous value in version control so reverting is a one-line change, and announce the change in the team channel so nobody is surprised by different behavior.",
	},
}
