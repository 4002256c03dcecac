//! The report's HTML templates (minijinja, auto-escaped), its one style sheet
//! (`report.css`) and its one script (`report.js`, sorting and filtering a table), written
//! once at the site's root and shared by every page. Nothing is loaded from the network: the
//! pages open from disk offline.

use minijinja::Environment;

/// The site's style sheet, `OUT/report.css`.
pub const CSS: &str = r#"body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.2em 2em;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.4em;vertical-align:top;text-align:center}
figcaption{font-size:.8em;max-width:24em;margin:.2em auto}
img.px{image-rendering:pixelated;border:1px solid #ccc}
.failed{color:#b00}.done{color:#070}.note{background:#fff8e0;border:1px solid #e8d48a;padding:.4em .8em}
.grid2{display:grid;grid-template-columns:auto auto auto;gap:.3em;align-items:start;justify-content:start}
pre{background:#f7f7f7;padding:.5em;overflow:auto;max-height:30em}
nav a{margin-right:1em}
nav.pages a,nav.pages b{margin-right:.4em}
"#;

/// The site's script, `OUT/report.js`: a table with id `t` gets a text filter (input `q`,
/// counter `n`) and sorting by a click on a column's header (`data-num="true"`: as numbers);
/// on `search.html` (form `search`), a text filter and a sort over every page of the task
/// table, reading their rows (`tasks-data-N.js`) one page at a time and keeping at most
/// `data-keep` rows: the matches in commit order, or the first ones in the sort's order.
pub const JS: &str = r#"(function(){
  var table=document.getElementById('t');if(!table)return;
  var body=table.tBodies[0],q=document.getElementById('q'),n=document.getElementById('n');
  var rows=Array.prototype.slice.call(body.rows);
  function count(){var k=0;rows.forEach(function(r){if(r.style.display!=='none')k++;});if(n)n.textContent=k+' of '+rows.length+' tasks shown';}
  if(q)q.addEventListener('input',function(){var s=q.value.toLowerCase();rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(s)>=0?'':'none';});count();});
  var heads=table.tHead.rows[0].cells,dir={};
  Array.prototype.forEach.call(heads,function(th,i){th.style.cursor='pointer';th.addEventListener('click',function(){
    var num=th.getAttribute('data-num')==='true',d=dir[i]=-(dir[i]||-1);
    rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;
      if(num){x=parseFloat(x);y=parseFloat(y);if(isNaN(x))x=-Infinity;if(isNaN(y))y=-Infinity;return d*(x-y);}
      return d*x.localeCompare(y);});
    rows.forEach(function(r){body.appendChild(r);});});});
  count();
})();
(function(){
  /* search.html: every page's rows (tasks-data-N.js, one at a time) filtered by text and,
     with a sort column, the first KEEP of all the matches in that order; only the rows
     kept are held, never the whole table. */
  var form=document.getElementById('search');if(!form)return;
  var pages=+form.getAttribute('data-pages'),total=+form.getAttribute('data-total'),KEEP=+form.getAttribute('data-keep');
  var q=document.getElementById('sq'),col=document.getElementById('scol'),dir=document.getElementById('sdir'),n=document.getElementById('n');
  var table=document.getElementById('st'),body=table.tBodies[0];
  var nums=Array.prototype.map.call(table.tHead.rows[0].cells,function(th){return th.getAttribute('data-num')==='true';});
  var params=new URLSearchParams(location.search);
  if(params.has('q'))q.value=params.get('q');if(params.has('sort'))col.value=params.get('sort');if(params.has('dir'))dir.value=params.get('dir');
  function key(r,c){var v=r.cells[c];if(nums[c]){v=parseFloat(v);return isNaN(v)?-Infinity:v;}return v;}
  function order(c,d){return function(a,b){var x=key(a,c),y=key(b,c);return d*(x<y?-1:x>y?1:0);};}
  var run=0;
  function search(){
    var me=++run,s=q.value.toLowerCase(),c=col.value===''?-1:+col.value,d=dir.value==='desc'?-1:1,kept=[],matches=0,p=1;
    n.textContent='searching…';
    window.ssReport={page:function(k,rows){if(me!==run)return;rows.forEach(function(r){
      if(s&&r.cells.join('\u0001').toLowerCase().indexOf(s)<0)return;
      matches++;
      if(c<0){if(kept.length<KEEP)kept.push(r);}
      else{kept.push(r);if(kept.length>=2*KEEP){kept.sort(order(c,d));kept.length=KEEP;}}});}};
    function show(){
      if(c>=0){kept.sort(order(c,d));if(kept.length>KEEP)kept.length=KEEP;}
      body.textContent='';
      kept.forEach(function(r){var tr=document.createElement('tr');tr.className=r.status;
        r.cells.forEach(function(v,i){var td=document.createElement('td');
          if(i===0){var a=document.createElement('a');a.href='t/'+r.id+'/index.html';a.textContent=v;td.appendChild(a);}else td.textContent=v;
          tr.appendChild(td);});
        body.appendChild(tr);});
      n.textContent=matches+' matching task(s) of '+total+', '+kept.length+' shown'+(matches>kept.length?(c>=0?' (the first '+KEEP+' in this order)':' (the first '+KEEP+' committed)'):'');
    }
    function next(){
      if(me!==run)return;
      if(p>pages){show();return;}
      var el=document.createElement('script');el.src='tasks-data-'+p+'.js';p++;
      el.onload=function(){el.remove();next();};
      el.onerror=function(){el.remove();n.textContent='tasks-data-'+(p-1)+'.js missing: write the report again';};
      document.head.appendChild(el);
    }
    next();
  }
  form.addEventListener('submit',function(e){e.preventDefault();search();});
  search();
})();
"#;

const BASE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<link rel="stylesheet" href="{{ up }}report.css"></head><body>
<nav><a href="{{ up }}index.html">index</a><a href="{{ up }}tasks.html">all tasks</a></nav>
{% block body %}{% endblock %}
<p style="color:#888;font-size:.8em">synthsweep report {{ version }}, written {{ written }} from {{ root }}</p>
</body></html>
"#;

const INDEX: &str = r#"{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
{% for w in warnings %}<p class="note">warning: {{ w }}</p>{% endfor %}
{% if filters %}<p class="note">filtered: {{ filters }}</p>{% endif %}
<h2>Status</h2>
<table><tr><th>kind</th><th>done</th><th>failed</th><th>total</th><th>task time (s)</th></tr>
{% for k in kinds %}<tr><td>{{ k.kind }}</td><td class="num done">{{ k.done }}</td><td class="num failed">{{ k.failed }}</td><td class="num">{{ k.total }}</td><td class="num">{{ k.seconds }}</td></tr>{% endfor %}
<tr><th>all</th><th class="num">{{ done }}</th><th class="num">{{ failed }}</th><th class="num">{{ total }}</th><th class="num">{{ seconds }}</th></tr></table>
<p>{{ running_note }}</p>
<h2>By axis</h2>
{% for a in axes %}<h3>{{ a.kind }}: {{ a.axis }}</h3>
<table><tr><th>{{ a.axis }}</th><th>done</th><th>failed</th></tr>
{% for v in a.values %}<tr><td>{{ v.value }}</td><td class="num">{{ v.done }}</td><td class="num">{{ v.failed }}</td></tr>{% endfor %}</table>
{% else %}<p>No axis takes more than one value.</p>{% endfor %}
<h2>Results against the grid</h2>
{% for f in strips %}<figure><img src="{{ f.file }}" alt="{{ f.caption }}"><figcaption>{{ f.caption }}</figcaption></figure>{% else %}<p>No finished task with a value to plot.</p>{% endfor %}
{% if mad_groups %}<h2>MAD competitions</h2>
<table><tr><th>image</th><th>metric 1</th><th>metric 2</th><th>also</th><th>tasks</th></tr>
{% for g in mad_groups %}<tr><td><a href="mad/{{ g.key }}.html">{{ g.image }}</a></td><td>{{ g.metric1 }}</td><td>{{ g.metric2 }}</td><td>{{ g.rest }}</td><td class="num">{{ g.count }}/4</td></tr>{% endfor %}</table>{% if mad_groups_total > mad_groups|length %}<p class="note">The first {{ mad_groups|length }} of {{ mad_groups_total }} competitions are listed (each has its page in mad/); <code>synthsweep report ROOT --where AXIS=VALUE</code> lists a subset.</p>{% endif %}{% endif %}
{% if scores_left_out %}<p class="note">{{ scores_left_out }} score task(s) beyond the matrices' {{ score_side }} images a side are not shown in them (their pages and the task table have them).</p>{% endif %}{% for m in score_matrices %}<h2>Scores: {{ m.metric }}</h2>
<table><tr><th>image a \ image b</th>{% for c in m.cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in m.rows %}<tr><th>{{ r.name }}</th>{% for c in r.cells %}<td class="num" style="background:{{ c.color }}">{{ c.text }}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}
<h2>Durations</h2>
<figure><img src="{{ durations }}" alt="task durations"><figcaption>Wall-clock seconds per finished task ({{ done }} tasks; median {{ median_s }} s, max {{ max_s }} s).</figcaption></figure>
<h2>Failures</h2>
{% if failures %}<table><tr><th>count</th><th>error</th><th>example</th></tr>
{% for f in failures %}<tr><td class="num">{{ f.count }}</td><td><code>{{ f.error }}</code></td><td><a href="t/{{ f.example }}/index.html">{{ f.example_label }}</a></td></tr>{% endfor %}{% if other_failures %}<tr><td class="num">{{ other_failures }}</td><td>(other messages, not listed)</td><td></td></tr>{% endif %}</table>{% else %}<p>No task failed.</p>{% endif %}
<h2>Tasks</h2><p><a href="tasks.html">All {{ total }} tasks</a> ({{ pages }} page(s) of up to {{ page_rows }} rows, sortable and filterable), each with its page.</p>
<h2>Runs (provenance)</h2>
{% for r in runs %}<details><summary><b>{{ r.run_id }}</b>: started {{ r.started_at }}, {{ r.state }}; {{ r.processes }} process(es) × {{ r.threads }} thread(s) on {{ r.devices }}; hosts {{ r.hosts }}; synthsweep {{ r.version }}, torch {{ r.torch }}, commit {{ r.git }}{% if r.committed %}; committed {{ r.committed }}{% endif %}</summary>
<p>command: <code>{{ r.command }}</code>{% if r.spec_path %}; spec {{ r.spec_path }}{% endif %}</p><pre>{{ r.spec_text }}</pre></details>{% else %}<p>No run record in _runs/.</p>{% endfor %}
{% endblock %}"#;

const TASKS: &str = r#"{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
{% macro pagelinks(prev, next, links) %}<nav class="pages">{% if prev %}<a href="{{ prev }}">&larr; previous</a>{% endif %}pages: {% for l in links %}{% if l.gap %}… {% endif %}{% if l.current %}<b>{{ l.n }}</b>{% else %}<a href="{{ l.file }}">{{ l.n }}</a>{% endif %} {% endfor %}{% if next %}<a href="{{ next }}">next &rarr;</a>{% endif %}</nav>{% endmacro %}
<p>Tasks {{ first_row }}–{{ last_row }} of {{ total }}, in the order they were committed, {{ rows|length }} on this page. Filter: <input id="q" type="search" placeholder="text in any column" size="40"> <span id="n"></span>. Click a column's header to sort. Filtering and sorting act on this page's rows; <a href="search.html">search and sort all {{ total }} tasks</a> across the pages, or for a report of a subset of the sweep, <code>synthsweep report ROOT --where AXIS=VALUE</code>.</p>
{{ pagelinks(prev, next, links) }}
<table id="t"><thead><tr>{% for c in columns %}<th data-num="{% if c.num %}true{% else %}false{% endif %}">{{ c.name }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr class="{{ r.status }}">{% for c in r.cells %}{% if loop.first %}<td><a href="t/{{ r.id }}/index.html">{{ c }}</a></td>{% else %}<td>{{ c }}</td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody></table>
{{ pagelinks(prev, next, links) }}
<script src="report.js"></script>
{% endblock %}"#;

const SEARCH: &str = r#"{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
<form id="search" data-pages="{{ pages }}" data-total="{{ total }}" data-keep="{{ keep }}">Text in any column: <input id="sq" type="search" size="40">
sorted by <select id="scol"><option value="">commit order</option>{% for c in columns %}<option value="{{ loop.index0 }}">{{ c.name }}</option>{% endfor %}</select>
<select id="sdir"><option value="asc">ascending</option><option value="desc">descending</option></select>
<button type="submit">search</button> <span id="n"></span></form>
<p>Searches the {{ pages }} page(s) of the task table, one at a time (each page's rows are in <code>tasks-data-N.js</code>), and shows at most {{ keep }} matching tasks: the first committed, or the first in the chosen order (over every match). An empty text matches every task. The address keeps a search: <code>search.html?q=TEXT&amp;sort=COLUMN&amp;dir=desc</code> (COLUMN counted from 0).</p>
<table id="st"><thead><tr>{% for c in columns %}<th data-num="{% if c.num %}true{% else %}false{% endif %}">{{ c.name }}</th>{% endfor %}</tr></thead><tbody></tbody></table>
<script src="report.js"></script>
{% endblock %}"#;

const TASK: &str = r#"{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
<table>{% for f in fields %}<tr><th>{{ f.0 }}</th><td>{% if f.0 == "status" %}<span class="{{ f.1 }}">{{ f.1 }}</span>{% else %}{{ f.1 }}{% endif %}</td></tr>{% endfor %}</table>
{% if error %}<p class="note failed">error: {{ error }}</p>{% endif %}
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
{% for s in sections %}<h2>{{ s.title }}</h2>
{% for f in s.figures %}<figure>{% if f.svg %}{{ f.svg|safe }}{% else %}<img src="{{ f.file }}" alt="{{ f.caption }}"{% if f.width %} class="px" width="{{ f.width }}"{% endif %}>{% endif %}<figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}
{% endfor %}
<details><summary>resolved task (params)</summary><pre>{{ params }}</pre></details>
{% endblock %}"#;

const MAD: &str = r#"{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
<p>As plenoptic's <code>display_mad_image_all</code>: the reference image and its initial (noisy) image, and the four MAD images: each metric pushed to its minimum and maximum while the other is held. Captions give both metrics' values at the final image.</p>
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
<div class="grid2">
{% for row in grid %}{% for f in row %}<figure>{% if f.file and f.link %}<a href="{{ f.link }}"><img src="{{ f.file }}" class="px" width="{{ width }}" alt="{{ f.caption }}"></a>{% elif f.file %}<img src="{{ f.file }}" class="px" width="{{ width }}" alt="{{ f.caption }}">{% endif %}<figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}
{% endfor %}</div>
<h2>Losses (as <code>plot_loss_all</code>)</h2>
{% for f in plots %}<figure><img src="{{ f.file }}" alt="{{ f.caption }}"><figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}
{% endblock %}"#;

/// The environment with every template of the report.
pub fn env() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", BASE),
        ("index.html", INDEX),
        ("tasks.html", TASKS),
        ("search.html", SEARCH),
        ("task.html", TASK),
        ("mad.html", MAD),
    ] {
        // The templates are constants checked by the tests: a syntax error is a bug.
        env.add_template(name, text)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses_and_the_base_renders() {
        let env = super::env();
        let html = env
            .get_template("base.html")
            .unwrap()
            .render(minijinja::context! { title => "<x>", up => "", version => "v", written => "w", root => "r" })
            .unwrap();
        assert!(html.contains("&lt;x&gt;") && html.contains("rel=\"icon\" href=\"data:,\""));
    }

    #[test]
    fn a_tasks_page_links_the_first_last_and_near_pages() {
        let env = super::env();
        let links: Vec<_> = [1usize, 4, 5, 6, 20]
            .iter()
            .map(|&n| {
                minijinja::context! { n => n, file => crate::tasks_page_file(n), current => n == 5, gap => n == 4 || n == 20 }
            })
            .collect();
        let html = env
            .get_template("tasks.html")
            .unwrap()
            .render(minijinja::context! {
                title => "t", up => "", version => "v", written => "w", root => "r",
                columns => Vec::<String>::new(), rows => Vec::<String>::new(),
                first_row => 2001, last_row => 2500, total => 10000, page => 5, pages => 20,
                links => links, prev => "tasks-4.html", next => "tasks-6.html",
            })
            .unwrap();
        // Twice (above and below the table): previous, 1, gap, 4, 5 (current), 6, gap, 20, next.
        assert_eq!(html.matches(r#"<a href="tasks.html">1</a> … <a href="tasks-4.html">4</a> <b>5</b> <a href="tasks-6.html">6</a> … <a href="tasks-20.html">20</a>"#).count(), 2, "{html}");
        assert_eq!(html.matches("&larr; previous").count(), 2);
        assert!(
            html.contains("Tasks 2001–2500 of 10000")
                && html.contains(r#"<script src="report.js">"#)
        );
    }
}
