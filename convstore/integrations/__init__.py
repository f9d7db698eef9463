"""convstore as the memory of agent frameworks, one module per framework.

Each module needs its framework, installed through the extra of the same name
(``pip install 'convstore[langgraph]'``); `import convstore` imports none of them.
"""
