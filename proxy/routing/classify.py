"""Classify a chat request: task type and complexity, with reason codes.

Pure and in-process: no I/O and no model call. It reads mainly the last user
turn (its head and tail only, so a pasted 50k-character log costs the same as
a sentence) plus cheap features of the rest: the system prompt, tool
definitions, the previous user turn, total length. Labels it aims for follow
the shared rubric (`bench/routing`): the task that decides the work, and the
cheapest tier that answers it well.

Task: the ask's leading verb phrase wins. Each vocabulary below matches a verb
and its object ("write ... function", "review this", "build ... app with");
the match that starts first in the ask (ties: the one whose object comes
first) decides, so context sentences with stray nouns do not.
Complexity: a base per task, moved by signals (hard topics, stakes, size,
"simple"/"just", pasted code, agent tools, conversation length).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import Complexity, Task
from ..types import Classification
from .vocab import Scan, Vocabulary

# How much of a turn the patterns see: the ask is nearly always at the start
# or the end of a message, whatever was pasted in between.
_HEAD = 2400
_TAIL = 1200
_LONG_CONTEXT_CHARS = 24_000

_I = re.IGNORECASE | re.MULTILINE


_any = Vocabulary


# -- what the ask is -----------------------------------------------------------

_FIM = re.compile(r"<\|?fim_(?:prefix|suffix|middle)\|?>")
_FENCE = "```"
_CODE_SYNTAX = _any(
    r"\bdef \w+\(",
    r"\bfunction\s*\w*\s*\(",
    r"\bclass \w+\s*[:({]",
    r"#include\b",
    r"^\s*import \w+",
    r"\bconst \w+ =",
    r"\bpublic static\b",
    r"\bfn \w+\(",
    r"\bfunc \w+\(",
)
_SQL = re.compile(r"\bSELECT\b.+\bFROM\b")  # upper case only: "select all users from" is prose
_W = r"[^\n]{0,70}?"  # the few words between a verb and its object

_PROSE = _any(
    r"\b(?:write|draft|compose|prepare|give me|help me (?:write|prepare)|rewrite|create)\b[^\n]{0,40}?\b(?:e-?mail|letter|essay|"
    r"blog|story|haiku|poem|joke|tweet|press release|postmortem|outline|study plan|guide|product description|message to|"
    r"cover letter|out-of-office|birthday message|speech|rfc template|explainer|(?:friendly|firm) [^\n]{0,20}message)\b",
    r"\b(?:summari[sz]e|give me a summary|tl;?dr|translat\w*|paraphrase|rewrite this (?:sentence|paragraph)|shorten|spell|correct the spelling|"
    r"fix the grammar|make this title case|turn this list|classify this|extract\b)",
    r"\b(?:escrib[ea]|redacta|redige|rédige|schreib\w*|viết)\b[^\n]{0,30}\b(?:correo|email|e-mail|carta|lettre|brief|thư|email)\b",
    r"\b(?:traduc\w*|übersetze|dịch sang)\b",
    r"翻訳|翻译|プレスリリース|を書いて(?:ください)?$",
    r"\bhelp me prepare\b",
    r"\btell me a\b",
    r"\bgive me (?:a|three|\d) (?:catchy|synonym|ideas?|name)\b",
    r"\bschedule a meeting\b",
    r"\bwhere is my order\b",
    r"\brefund\b",
)
_PROJECT = _any(
    rf"\b(?:build|create|make|generate|design and (?:build|implement)|set up|develop)\b{_W}\b(?:app|application|website|web ?app|"
    r"site|platform|saas|bot|extension|storefront|project|monorepo|shortener|tracker|dashboard|game|marketplace|ledger service|"
    r"scheduler|system|service|microservice|pipeline project|tool like)\b(?=[^\n]{0,300}(?:,|\band\b|\bwith\b|:))",
    r"\bscaffold\w*\b",
    r"\bfrom scratch\b",
    r"\bnew (?:project|python project|service|package|app|repo|microservice)\b",
    r"\b(?:project|folder) (?:structure|layout)\b",
    r"\bboilerplate\b",
    r"\bfull[- ]stack (?:app|application)\b",
    r"^/new\b",
    r"\bcreate the (?:whole )?project\b",
    r"\b(?:crea|crie|cria|criar|crear)\b[^\n]{0,40}\b(?:aplicaci[oó]n|aplica[cç][aã]o|projeto|proyecto|api|sistema|app)\b",
    r"\b(?:cree|crée|crees|crées|creez|créez)\b[^\n]{0,40}\b(?:projet|application|app)\b",
    r"\berstelle\b[^\n]{0,40}\b(?:projekt|anwendung|app|webanwendung)\b",
    r"\bneues projekt\b",
    r"tạo (?:một )?(?:dự án|ứng dụng|project)",
    r"新規に作成|新しいプロジェクト|プロジェクトを作成",
    r"创建一个[^。]{0,20}(?:项目|系统|应用)|新建项目",
)
_ANALYZE = _any(
    r"\breview(?:ing)? (?:this|my|the|our|these|that|it)\b",
    r"^review\b",
    r"\bsecurity (?:review|audit)\b",
    r"\baudit (?:of|our|my|this|the)\b",
    r"\bdo an? (?:security )?audit\b",
    r"^audit\b",
    r"\bassess\b",
    r"\bevaluate\b",
    r"\banaly[sz]e\b",
    r"\bdiagnose\b",
    r"\binvestigate\b",
    r"\broot cause\b",
    r"\bfind (?:the )?(?:leak|cause|race|pattern|bug|problem|issue)\b",
    r"\bidentify\b",
    r"\binterpret\b",
    r"\bcompare\b",
    r"\bwhich (?:would|should) (?:you|i) (?:pick|choose|use)\b",
    r"\bwhich should i use\b",
    r"\bwhat(?:'s| is) (?:wrong|going on|the output|the likely cause|the time complexity)\b",
    r"\bwhat does (?:this|the following|`|[^\n]{0,30}`)",
    r"^what does this do\b",
    r"\bexplain what (?:this|the|my)\b",
    r"\bexplain (?:the|this) (?:code|snippet|function|cascade|lock)\b",
    r"\bexplain how [^\n]{0,40} works in this repo\b",
    r"\bexplain what this\b",
    r"\bwhat else could be improved\b",
    r"\bwhy (?:is|does|do|did|could|would)\b",
    r"^why\b",
    r"\bis (?:this|it) (?:a )?(?:good|valid|safe|correct)\b",
    r"\bis [^\n]{1,40}(?:true|valid) (?:in|sql)\b",
    r"\bwhich of these\b",
    r"\btell me (?:why|the trend)\b",
    r"\bcheck (?:our|my|this|the)\b",
    r"\bcommit message\b",
    r"\bpr description\b",
    r"^/explain\b",
    r"\bwhere do we handle\b",
    r"\blook at this\b",
    r"\bevaluate\b",
    r"\bwhat is going on\b",
    r"\bdesign (?:the|an?|our) (?:architecture|system|schema|data model)\b",
    r"\bdebug\w*\b",
    r"\bbuild a cohort\b",
    r"\bwhich countries\b",
    r"\bread this\b",
    r"\blist the (?:weakest|risks|problems|issues)\b",
    # es / pt / fr / de / vi / ja / zh / ru
    r"\brevis[ae]\b",
    r"\bcompar[ae]\b",
    r"\bcausa ra[ií]z\b",
    r"\bpor qu[eé]\b",
    r"\bcómo se comparan\b",
    r"\bpourquoi\b",
    r"\bfais un audit\b",
    r"\bfinde die ursache\b",
    r"\bwarum\b",
    r"\bvergleiche\b",
    r"giải thích đoạn code",
    r"phân tích",
    r"nguyên nhân",
    r"chỉ ra các vấn đề",
    r"バグを見つけ",
    r"レビュー",
    r"原因",
    r"分析",
    r"найди причину",
    r"объясни",
)
_CODE = _any(
    rf"\b(?:write|implement|refactor|fix|port|convert|rewrite|migrate|replace|add|make|create|generate|build|optimi[sz]e|"
    rf"update|rename|extend|complete|introduce|give me|show me)\b{_W}\b(?:"
    r"functions?|method|class|script|tests?|regex|regular expression|query|sql|endpoint|component|module|program|code|"
    r"bug|api|cli(?! (?:app|tool))|decorator|middleware|dockerfile|workflow|yaml|config|schema|resolvers?|kernel|parser|server|crawler|"
    r"handler|hooks?|types?|interface|cache|queue|heap|tree|filter|limiter|generator|lock|locking|service|job|layer|"
    r"implementation|calculator|backend|wrapper|flag|button|hints|docstring|migration|gitignore|loop|page|flow|"
    r"json object|json schema|terraform|deployment|variable|lint|retries|timeouts|validation|algorithm|statement|"
    r"expression|one-?liner|f-string|pipeline|bot|client|it)\b",
    r"\bimplement\w*\b",
    r"\brefactor\b",
    r"\bunit tests?\b",
    r"\bpytest\b",
    r"\bwrite (?:pytest|unit|jest)\b",
    r"\bone-?liner\b",
    r"\bregex\b",
    r"\bcron expression\b",
    r"\bf-string\b",
    r"\b(?:bash|shell|git|docker|kubectl|sql|powershell) (?:command|statement|script)\b",
    r"^(?:git|docker|kubectl) command\b",
    r"^(?:sql|css|html|regex|bash|python|js|javascript|typescript|go|rust|java)\b",
    r"\bhello world\b",
    r"\bhow (?:do i|to|can i)\b[^\n]{0,60}\b(?:in|with|from) (?:python|javascript|js|typescript|rust|go|java|bash|c|sql|the terminal)\b",
    r"\bhow do i (?:create a virtual environment|lowercase|reverse)\b",
    r"\bjust the (?:code|commands)\b",
    r"\b(?:in|en|auf|em|trong) (?:python|javascript|typescript|rust|go|java|c\+\+|c#|bash|sql|powershell)\b",
    r"\b(?:list|dict(?:ionary)?) comprehension\b",
    r"\bfailing\b",
    r"\brun the tests\b",
    r"\bfix it\b",
    r"^/(?:fix|tests)\b",
    r"\bconvert to\b",
    r"\bfrom the terminal\b",
    r"^(?:and|now) in \w+\b",
    # es / pt / fr / de / vi / ja / zh / ko / ru
    r"\bescrib[ea]\b",
    r"\bescreva\b",
    r"\bimplementa\w*\b",
    r"\bañade\b",
    r"\bfunci[oó]n\b",
    r"\bfunção\b",
    r"\b(?:ecris|écris|ecrit|écrit)\b",
    r"\bréécris\b",
    r"\bajoute\b",
    r"\bfonction\b",
    r"\bschreib\w*\b",
    r"\bimplementiere\b",
    r"\bersetze\b",
    r"\bfunktion\b",
    r"viết (?:hàm|một|module|lại|api)",
    r"\bhàm\b",
    r"tối ưu hóa",
    r"\bthêm endpoint\b",
    r"書いて",
    r"実装",
    r"書き換え",
    r"まとめ",
    r"関数",
    r"コードを",
    r"写一个",
    ("用", r"用\w+写"),
    r"实现",
    r"函数",
    r"工具类",
    r"修复",
    r"작성",
    r"напиши",
    r"функци",
)
_EXPLAIN = _any(
    r"\bexplain\b", r"\bexpl[ií]ca\w*\b", r"\bexplique\w*\b", r"\berkläre\b", r"giải thích", r"説明", r"解释"
)
_SMALL_TALK_RE = re.compile(
    r"^\s*(?:hi|hello|hey|yo|hola|ol[aá]|bonjour|hallo|xin chào|привет|你好|こんにちは|안녕하세요)"
    r"(?:\s+(?:there|all|everyone|team))?[\s!.,?！]*(?:(?:how are you|qué tal|tudo bem|comment ça va|bạn khỏe không|как дела)[^\n]{0,20})?[\s!.,?！？]*$"
    r"|^\s*good (?:morning|afternoon|evening)\b[^\n]{0,40}$"
    r"|^\s*(?:thanks|thank you|thx|ok|okay|cool|great|merci|gracias|danke|cảm ơn|ありがとう|谢谢|好的)\b[^\n]{0,30}$",
    _I,
)
_CODE_TOOLS = re.compile(
    r"\b(?:read_file|write_file|edit_file|run_shell|run_command|search_code|apply_patch|bash|str_replace)\b"
)
_DATA_TOOLS = re.compile(r"\b(?:run_sql|query_db|execute_query)\b")
_FOLLOW_UP = re.compile(
    r"^\s*(?:and|now|also|what about|how about|same|again|another|one (?:more|about)|et|y|e|und|và|còn)\b"
    r"|^[^\n]{0,30}\?\s*$|^\s*\S{1,6}(?:は|呢)[？?]?\s*$",
    _I,
)

# -- how hard it is ------------------------------------------------------------

_CRITICAL = _any(
    r"\bsecurity[- ](?:critical|sensitive|review|audit)\b",
    r"\bvulnerab\w*\b",
    r"\bexploit\w*\b",
    r"\bcryptograph\w*\b",
    r"\bencryption scheme\b",
    r"\bend-to-end encryption\b",
    r"\bdouble ratchet\b",
    r"\bargon2\w*\b",
    r"\bpassword hashing\b",
    r"\bsaml\b",
    r"\bjwt validation\b",
    r"\bjwks\b",
    r"\bsignature (?:validation|verification)\b",
    r"\bhsm\b",
    r"\baes-gcm\b",
    r"\bsmart contract\b",
    r"\bhot wallet\b",
    r"\bhipaa\b",
    r"\bpatient\w*\b",
    r"\binsulin\b",
    r"\bdos(?:ing|age)\b",
    r"\bmedical\b",
    r"\braft\b",
    r"\bpaxos\b",
    r"\btwo-phase commit\b",
    r"\block-free\b",
    r"\bcrdt\b",
    r"\bhigh-frequency trading\b",
    r"\bkill switch\b",
    r"\bpayouts?\b",
    r"\bbanking\b",
    r"\bledger\b",
    r"\bpayment (?:capture|service|processing|path|system)\b",
    r"\bpayments? (?:in production|workloads)\b",
    r"\breal payments\b",
    r"\bdouble charges\b",
    r"\bsoc ?2\b",
    r"bảo mật",
    r"ngân hàng",
    r"セキュリティ",
    r"決済",
    r"\bseguridad\b",
    r"\bbancaria\b",
    r"\bsécurité\b",
    r"\bpaiement\b",
)
_SENSITIVE = _any(
    r"\bsecurity\b",
    r"\bauth\w*\b",
    r"\bpayments?\b",
    r"\bbank\b",
    r"\bencrypt\w*\b",
    r"\btokens?\b",
    r"\boauth\b",
    r"\bprivacy\b",
    r"\btenant\b",
    r"\bcredentials?\b",
    r"\bsecrets?\b",
    r"\bsql injection\b",
    r"\bmoney\b",
    r"\bsso\b",
)
_STAKES = _any(
    r"\bproduction\b",
    r"\bcritical\b",
    r"\breal money\b",
    r"\bbreach\b",
    r"\bmillion users\b",
    r"\$\d+[mk]\b",
    r"\bregulat\w*\b",
    r"\bmulti-tenant\b",
    r"\btenant isolation\b",
    r"\bdata centers\b",
    r"\bacross regions\b",
    r"\bcorrect under\b",
    r"\bsound\b",
    r"\bproof\b",
    r"\bproducci[oó]n\b",
    r"\bcrítico\b",
    r"sống còn",
    r"本番",
)
_PROOF = _any(r"\bprove\b", r"\brigor\w*\b", r"\bderive\b", r"\bproof\b")
_HARD_STRONG = _any(
    r"\bconcurren\w*\b",
    r"\bthread-?safe\b",
    r"\brace condition\b",
    r"\bdeadlock\w*\b",
    r"\block ordering\b",
    r"\bmemory leak\b",
    r"\bfind the leak\b",
    r"\bdistributed\b",
    r"\bmulti-region\b",
    r"\bactive-active\b",
    r"\bconsistent hashing\b",
    r"\bsaga\b",
    r"\bexactly once\b",
    r"\bvisibility timeout\b",
    r"\bn\+1\b",
    r"\bmonolith\w*\b",
    r"\bdijkstra\b",
    r"\bb-tree\b",
    r"\binterval tree\b",
    r"\bbloom filter\b",
    r"\bpratt parser\b",
    r"\bcuda\b",
    r"\bforkjoinpool\b",
    r"\bcondition variables\b",
    r"\bbackpressure\b",
    r"\bscales? horizontally\b",
    r"\bdeeppartial\b",
    r"\btype-level\b",
    r"\bdiscriminated union\b",
    r"\bevery call site\b",
    r"\bin \d+ files\b",
    r"\bthread dumps?\b",
    r"\bheap snapshots?\b",
    r"\bexplain analyze\b",
    r"\bpprof\b",
    r"\broot cause\b",
    r"\bflaky\b",
    r"\bmicroservices? architecture\b",
    ("/,", r"\b\w+/,\s*\w+/"),
    r"\bacross (?:the )?services\b",
    r"\ball modules\b",
    r"\balle[nm]? modul\w*\b",
    r"\bevery module\b",
    ("services", r"\b\d+ services\b"),
    r"\bcohort\b",
    r"\bsharded\b",
    r"\bwithout a global lock\b",
    r"\bcausa ra[ií]z\b",
    r"\bursache\b",
    r"nguyên nhân gốc",
    r"根本原因",
    r"найди причину",
    r"\bconcurrent map\b",
    r"race condition",
    r"nhiều luồng",
    r"分散トレーシング",
    r"线程安全",
    r"高并发",
    r"死锁",
)
_HARD = _any(
    r"\bparallel\w*\b",
    r"\basyncio\b",
    r"\bgoroutines?\b",
    r"\block\b",
    r"\bperformance\b",
    r"\bp99\b",
    r"\blatency (?:spikes|jumped)\b",
    r"\bslower\b",
    r"\bspikes?\b",
    r"\bleak\w*\b",
    r"\bOOM\b",
    r"\bprofile\b",
    r"\bbounded memory\b",
    r"\bvectori[sz]ed\b",
    ("m rows", r"\b\d+M rows\b"),
    ("gb", r"\b\d+ ?GB\b"),
    ("tb", r"\b\d+ ?TB\b"),
    r"\bper hour\b",
    r"\breplication\b",
    r"\bidempoten\w*\b",
    r"\brebalance\b",
    r"\bacross (?:the )?(?:three|several|multiple|\d+|all)\b",
    r"\bacross \w+/",
    r"\bmonorepo\b",
    r"\bmigrat\w*\b",
    r"\ball modules\b",
    r"\binto modules\b",
    r"\barchitecture\b",
    r"\bdesign doc\b",
    r"\btrade-?offs?\b",
    r"\brecommend one\b",
    r"\bconstraints?\b",
    r"\bincident\b",
    r"\bcascade\b",
    r"\bgc\b",
    r"\bpool exhausted\b",
    r"\bcircuit\b",
    r"\byen's\b",
    r"\bgeneric\b",
    r"\binference\b",
    r"\bspecification pattern\b",
    r"\bunit of work\b",
    r"\bweb crawler\b",
    r"\boptimistic lock\w*\b",
    r"\bwebsocket server\b",
    r"\bcontention\b",
    r"\bconflicts?\b",
    r"\boffline\b",
    r"\breverse dependencies\b",
    r"\bcorrelat\w*\b",
    (" lines", r"\b\d{1,3}(?:,\d{3})+ lines\b"),
    ("page", r"\b\d+[- ]page\b"),
    r"\bmemory\b",
    r"\bhere are (?:the )?(?:components|logs|thread|heap|configs?|numbers|\d)",
    r"\bsecurity\b",
    r"\bstreaming\b",
    r"\bclock[- ]drift\b",
    r"\bthroughput\b",
    r"\bsnowflake\b",
    r"\bpriority\b",
    r"\bstrict latency\b",
    r"\bunder load\b",
    r"\baquí están\b",
    r"\bpierde mensajes\b",
    r"\bmémoire bornée\b",
    r"\bparallélisme\b",
    r"\bunter last\b",
    r"\basynchron\w*\b",
    r"\btokio\b",
    r"\bherunterf\w*\b",
    r"\balle[nm]? modul\w*\b",
    r"\bthread-?dumps\b",
    r"tải cao",
    r"connection pool",
    r"マイクロサービス",
    r"3つのサービス",
    r"非同期",
    r"超时",
    r"三个服务",
    r"慢日志",
    r"分布式锁",
    r"乐观锁",
    r"под нагрузкой",
    r"\bmultiples?\b",
    r"\bmillions?\b",
    r"\bmillones\b",
    r"\b10 millions\b",
)
_EXTENDED = _any(
    r"\bin (?:depth|detail)\b",
    r"\bdetailed\b",
    r"\bstep by step\b",
    r"\bthorough\w*\b",
    r"\bwith (?:[\w-]+ )?examples?\b",
    r"\bexamples? each\b",
    r"\bpros and cons\b",
    r"\bbalanced\b",
    r"\bcovering\b",
    r"\bincluding\b",
    r"\beach one\b",
    r"\bkey terms\b",
    ("word", r"\b[2-9]\d\d[- ]words?\b"),
    ("字", r"\d\d\d字"),
    r"\bdecisions, action items\b",
    r"\bbullet points\b",
    r"\bmain points\b",
    r"\ben d[ée]tail\b",
    r"\bausführlich\b",
    r"\bchi tiết\b",
    r"詳しく",
    r"详细",
    r"\bem detalhes\b",
    r"\ben detalle\b",
    r"\bhow does\b[^\n]{0,40}\bwork\b",
    r"\bexplain how\b",
    r"\bguide\b",
    r"\bstudy plan\b",
    r"\bcover letter\b",
    r"\blettre de motivation\b",
    r"\bessay\b",
    r"\bblog\b",
    r"\bstory\b",
    r"\bprofessional\b",
    r"\bformal\w*\b",
    r"\bpress release\b",
    r"プレスリリース",
    r"\bemail xin\b",
    r"\bcite\b",
    r"\bsourced\b",
    r"\bpersuasive\b",
    r"\bfirm\b",
    r"\binterview\b",
    r"\bexplain the difference\b",
    r"\bwhen to use each\b",
    r"\bpolicy\b",
    r"\bexplain\b[^\n]{0,30}\bto a\b",
    r"\bcompared?\b",
    r"\bapolog\w*\b",
    r"\bwhat are the\b",
)
_SIMPLE = _any(
    r"\bquick\w*\b",
    r"\bsimple\b",
    r"\bjust\b",
    r"\bbrief(?:ly)?\b",
    r"\bone[- ]?(?:liner|sentence|line|word)\b",
    r"\bhello world\b",
    r"\bshort\b",
    r"\btl;?dr\b",
    r"\bminimal\b",
    r"\bbasic\b",
    r"\bsmall\b",
    r"\btoy\b",
    r"\ba (?:rough )?draft\b",
    r"\bsimple version\b",
    r"\bréponse courte\b",
    r"\bsimples?\b",
)
_BRIEF = _any(
    r"\bquick\w*\b",
    r"\bbrief(?:ly)?\b",
    r"\bone[- ]?(?:liner|sentence|line|word)\b",
    r"\btl;?dr\b",
    r"\bshort answer\b",
    r"\bin a few words\b",
    r"\bréponse courte\b",
)
_SMALL_PROJECT = _any(
    r"\bscaffold\w*\b", r"\bset up a new\b", r"\bsrc layout\b", r"\bboilerplate\b", r"\bjust the tree\b"
)
_TRIVIAL_CODE = _any(
    r"\bregex\b",
    r"\bregular expression\b",
    r"\bone-?liner\b",
    r"\bhello world\b",
    r"\bcommands?\b",
    r"\bcron expression\b",
    r"\blist comprehension\b",
    r"\bf-string\b",
    r"\.gitignore\b",
    r"\bkubectl\b",
    r"\bgit\b",
    r"\bdocker\b",
    r"\binterface for\b",
    r"\bjson object representing\b",
    r"\bcount (?:rows|lines)\b",
    r"\bfor loop\b",
    r"\bif statement\b",
    r"\bcheck if a number\b",
    r"\breverse a string\b",
    r"\blast element\b",
    r"\bmaximum of\b",
    r"\bcenter a div\b",
    r"\bread a file line by line\b",
    r"\bmerge two dicts\b",
    r"\bsum of\b",
    r"\bsomme d'un tableau\b",
    r"\bpalindrom\w*\b",
    r"\bprime\b",
    r"\bsquare\b",
    r"\bprint\b",
    r"\brename the variable\b",
    r"\brun the tests\b",
    r"\badd a (?:reset|column)\b",
    r"\badd a column\b",
    r"\bconvert to for\b",
    r"\bsort a list\b",
    r"\blowercase\b",
    r"\bcurrent date\b",
    r"\bhtml page\b",
    r"\bvirtual environment\b",
    r"\bnode\.?js version\b",
    r"\bsql (?:to|statement)\b",
    r"\bselect all\b",
    r"\bcount\b",
    r"\bexpresi[oó]n regular\b",
    r"đảo ngược",
    r"合計",
    r"质数",
    r"\+=",
    r"\bapagar\b",
    r"\beven\b",
    r"\binitial value\b",
    r"\bjson\b(?! schema)",
)
_TESTS_ASKED = _any(
    r"\b(?:write|add|with|plus|and|include|including)\b[^\n]{0,25}\btests?\b",
    r"\bunit tests?\b",
    r"\bpytest\b",
    r"\bjunit\b",
    r"単体テスト|テスト|单元测试|\bpruebas\b|\btestes\b|\btests\b|тест|테스트|kèm unit test",
)
_SMALL_QUESTION = _any(
    r"\bwhat (?:is|does|are)\b",
    r"\bwhat's\b",
    r"\bwhat does this do\b",
    r"\bwhich (?:of these )?is (?:faster|bigger)\b",
    r"\bis [^\n]{1,50} (?:true|valid)\b",
    r"\bmean\b",
    r"\bin one sentence\b",
    r"\bcommit message\b",
)
_JUDGEMENT = _any(r"\bimprov\w*\b", r"\bgood\b", r"\bbetter\b", r"\bwhy\b", r"\bwrong\b", r"\bcomplexity\b", r"\band\b")
_WORD_COUNT = re.compile(r"\b(\d{3,4})[- ]?(?:words?|字)")
_FIX = re.compile(r"\bfix\b")
_TREE_ONLY = _any(r"\btree\b", r"\bfolder structure\b")
_LONG_DOCUMENT = _any(r"\bcomprehensive\b", r"\bdetailed (?:technical )?(?:rfc|outline)\b")


_CLAUSES = re.compile(r"\band\b|\bwith\b|;|\bplus\b|\.\s+\w")


def _clauses(low: str) -> int:
    """How many parts an ask has ("... and ...", "... with ...", ";", sentences), counted in its first 600 characters."""
    return len(_CLAUSES.findall(low, 0, 600))


_WIDE = re.compile(r"[\u2e80-\uffff]")

_LEVELS: tuple[Complexity, ...] = ("low", "medium", "high", "critical")
_QUALITY_SHIFT = {"low": -1, "normal": 0, "high": 1}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


@dataclass(slots=True)
class _Turn:
    """The last user turn split into the words of the ask and what was pasted."""

    ask: str
    window: str
    pasted: int
    has_code: bool
    asked: Scan
    seen: Scan

    @classmethod
    def of(cls, text: str) -> _Turn:
        window = text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + "\n" + text[-_TAIL:]
        marked = _FENCE in window or "<current_file" in window or "<selection>" in window
        if not marked:
            scan = Scan.of(window)
            has_code = _CODE_SYNTAX.found(scan) or ("SELECT" in window and _SQL.search(window) is not None)
            return cls(window, window, 0, has_code, scan, scan)
        kept: list[str] = []
        inside = False
        pasted = 0
        for line in window.splitlines():
            stripped = line.strip()
            if stripped.startswith(_FENCE):
                inside = not inside
                continue
            if stripped.startswith(("<current_file", "<selection")):
                inside = True
                continue
            if stripped.startswith(("</current_file", "</selection")):
                inside = False
                continue
            if inside:
                pasted += len(line) + 1
            else:
                kept.append(line)
        ask = "\n".join(kept).strip()
        return cls(ask, window, pasted, True, Scan.of(ask), Scan.of(window))


@dataclass(slots=True)
class _Context:
    last: str
    previous: str
    system: str
    total_chars: int
    tool_names: str


def _context(body: dict[str, Any]) -> _Context:
    messages = body.get("messages") or []
    last = previous = system = ""
    total = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        text = _text(message.get("content"))
        total += len(text)
        if role == "user":
            previous, last = last, text
        elif role in ("system", "developer") and not system:
            system = text[:600]
    names: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools[:32]:
            if isinstance(tool, dict):
                function = tool.get("function", tool)
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    names.append(function["name"])
    return _Context(last, previous, system, total, " ".join(names))


_TASK_PATTERNS: tuple[tuple[Task, str, Vocabulary, int], ...] = (
    ("chat", "task:prose_words", _PROSE, 0),
    ("create_project", "task:project_words", _PROJECT, 1),
    ("code", "task:code_words", _CODE, 2),
    ("analyze", "task:analyze_words", _ANALYZE, 3),
)


def _task_of(turn: _Turn, ctx: _Context, reasons: list[str]) -> Task | None:
    """The task the ask's words name, or None when they name none."""
    if "fim_" in turn.window and _FIM.search(turn.window):
        reasons.append("task:fim")
        return "code"
    found: dict[Task, int] = {}
    best: tuple[int, int, Task, str] | None = None
    for task, reason, vocabulary, rank in _TASK_PATTERNS:
        start = vocabulary.first(turn.asked)
        if start is not None:
            found[task] = start
            key = (start, rank, task, reason)
            if best is None or key < best:
                best = key
    if best is not None:
        task, reason = best[2], best[3]
        if task == "create_project" and found.get("code") == best[0] and turn.ask.count(",") + turn.ask.count("、") < 2:
            # "Create a Deployment YAML for an nginx app": one artefact, not a project.
            task, reason = "code", "task:code_words"
        reasons.append(reason)
        return task
    if turn.has_code:
        if _EXPLAIN.found(turn.asked) or turn.ask.endswith("?"):
            reasons.append("task:question_about_code")
            return "analyze"
        reasons.append("task:code_present")
        return "code"
    return None


def _fallback_task(ctx: _Context, reasons: list[str]) -> Task:
    if _CODE_TOOLS.search(ctx.tool_names):
        reasons.append("task:coding_agent")
        return "code"
    if _DATA_TOOLS.search(ctx.tool_names):
        reasons.append("task:data_agent")
        return "analyze"
    if "Complete the code" in ctx.system:
        reasons.append("task:completion")
        return "code"
    reasons.append("task:default_chat")
    return "chat"


def _ask_len(ask: str) -> int:
    """Length in Latin-text characters: a CJK character carries about three."""
    wide = len(_WIDE.findall(ask)) if not ask.isascii() else 0
    return len(ask) + 2 * wide


def _level_of(task: Task, turn: _Turn, ctx: _Context, reasons: list[str]) -> int:
    ask = turn.ask
    ask_len = _ask_len(ask)
    asked, seen = turn.asked, turn.seen
    simple = _SIMPLE.found(asked)
    clauses = _clauses(asked.low)
    critical = _CRITICAL.found(seen)
    sensitive = _SENSITIVE.found(seen)
    stakes = _STAKES.found(seen)

    if task == "create_project":
        if critical or (stakes and (sensitive or clauses >= 2)):
            reasons.append("complexity:critical_project")
            return 3
        if simple or _SMALL_PROJECT.found(asked) or ask_len < 70:
            reasons.append("complexity:small_project")
            return 0 if _TREE_ONLY.found(asked) else 1
        return 2

    if task == "chat":
        if _PROOF.found(asked):
            reasons.append("complexity:proof")
            return 3
        level = 0
        words = _WORD_COUNT.search(asked.low) if ("word" in asked.low or "字" in asked.low) else None
        extended = _EXTENDED.found(asked)
        brief = _BRIEF.found(asked)
        explains = ask_len > 60 and _EXPLAIN.found(asked)
        if (
            ((extended or explains) and not brief)
            or (words and int(words.group(1)) >= 150)
            or (ask_len > 200 and not brief)
        ):
            level = 1
            reasons.append("complexity:extended_prose")
            if ask_len > 150 and _LONG_DOCUMENT.found(asked):
                level = 2
                reasons.append("complexity:long_document")
        elif ctx.tool_names and clauses >= 2 and ask_len > 120:
            level = 1
            reasons.append("complexity:multi_step_agent")
        return level

    # code and analyze
    if critical or (sensitive and stakes):
        reasons.append("complexity:critical_words")
        return 3
    # Earlier user turns carry the topic ("implement it in Go" after "a consistent hashing ring").
    hard_strong = _HARD_STRONG.found(seen) or (bool(ctx.previous) and _HARD_STRONG.found(Scan.of(ctx.previous[:_HEAD])))
    hard = _HARD.distinct(seen)
    long_ask = ask_len > (150 if task == "analyze" else 200)
    if hard_strong or hard >= 2 or (hard and (long_ask or turn.pasted > 1500)) or (task == "analyze" and sensitive):
        reasons.append("complexity:hard_words")
        return 2
    if ctx.total_chars > _LONG_CONTEXT_CHARS:
        reasons.append("complexity:long_context")
        return 2
    if _is_trivial(task, turn, ask_len, clauses, simple, ctx):
        reasons.append("complexity:trivial")
        return 0
    return 1


def _is_trivial(task: Task, turn: _Turn, ask_len: int, clauses: int, simple: bool, ctx: _Context) -> bool:
    if task == "analyze":
        return (
            ask_len < 70
            and turn.pasted < 160
            and _SMALL_QUESTION.found(turn.asked)
            and not _JUDGEMENT.found(turn.asked)
        )
    low = turn.asked.low
    if _TESTS_ASKED.found(turn.asked) and "run the tests" not in low:
        return False
    trivial_words = _TRIVIAL_CODE.found(turn.asked)
    if turn.pasted and not trivial_words:
        return False
    if _CODE_TOOLS.search(ctx.tool_names) and not trivial_words:
        return False
    if trivial_words and ask_len < 120 and clauses <= 2:
        return True
    return ask_len < 70 and clauses == 0 and _FIX.search(low) is None or (simple and ask_len < 90)


def _classify(body: dict[str, Any], reasons: list[str]) -> tuple[Task, int]:
    ctx = _context(body)
    turn = _Turn.of(ctx.last)
    if len(turn.ask) < 60 and _SMALL_TALK_RE.search(turn.ask):
        reasons.append("task:small_talk")
        return "chat", 0
    task = _task_of(turn, ctx, reasons)
    if ctx.previous and len(turn.ask) < 90 and (task is None or _FOLLOW_UP.search(turn.ask)):
        # A short follow-up inherits the task and roughly the tier of what came before.
        earlier: list[str] = []
        earlier_task, earlier_level = _classify(
            {"messages": [{"role": "user", "content": ctx.previous}], "tools": body.get("tools")}, earlier
        )
        reasons.append("task:follow_up")
        if task is None or task == "chat" and earlier_task != "chat":
            return earlier_task, earlier_level
        own = _level_of(task, turn, ctx, reasons)
        return task, max(own, earlier_level) if task == earlier_task else own
    if task is None:
        task = _fallback_task(ctx, reasons)
    return task, _level_of(task, turn, ctx, reasons)


def _request_signals(body: dict[str, Any], level: int, reasons: list[str]) -> int:
    """Fields of the request besides its words: a long requested answer, attached images."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 4000 and level < 1:
        reasons.append("complexity:long_answer_requested")
        level = 1
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    content = last.get("content") if isinstance(last, dict) else None
    if (
        isinstance(content, list)
        and level < 1
        and any(
            isinstance(part, dict) and part.get("type") in ("image_url", "input_image", "image") for part in content
        )
    ):
        reasons.append("complexity:image_attached")
        level = 1
    return level


def classify(body: dict[str, Any], quality: str | None = None) -> Classification:
    """Decide task and complexity from the request body (pure, no I/O)."""
    reasons: list[str] = []
    task, level = _classify(body, reasons)
    level = _request_signals(body, level, reasons)
    shift = _QUALITY_SHIFT.get(quality or "normal", 0)
    if shift:
        level = min(3, max(0, level + shift))
        reasons.append(f"quality:{quality}")
    return Classification(task=task, complexity=_LEVELS[level], reasons=tuple(reasons))
